# -*- coding: utf-8 -*-
# What the extsnap.vm modules share: running the extsnap binary on the
# target host, reading its --output=json, its --progress=json lines and its
# one-line errors. The modules decide; extsnap plans, journals and refuses.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

# The options every module takes (documented in doc_fragments/extsnap.py).
COMMON_ARGS = dict(
    binary=dict(type='path'),
    root=dict(type='path'),
    config_dir=dict(type='path'),
    snapshot_dir=dict(type='path'),
    run_dir=dict(type='path'),
    swtpm_dir=dict(type='path'),
)

# Domain commands whose work is long enough to report progress.
PROGRESS_COMMANDS = ('delete', 'commit', 'recover', 'verify', 'setup')


def snake(value):
    """extsnap's JSON with its field names as Ansible variables take them
    ('pending-journal' -> 'pending_journal'), recursively."""
    if isinstance(value, dict):
        return dict((k.replace('-', '_'), snake(v)) for k, v in value.items())
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def progress_summary(lines):
    """The progress lines worth returning: per stream (phase, disk, image)
    the first line past each tenth of the work and the last one, and every
    notice; a long merge so reports about a dozen lines, not thousands."""
    kept, last, tenth = [], {}, {}
    for p in lines:
        if p.get('type') != 'progress':
            kept.append(p)
            continue
        key = (p.get('phase'), p.get('disk'), p.get('image'))
        total = p.get('bytes_total') or 0
        step = (p.get('bytes_done', 0) * 10 // total) if total else 0
        if key not in tenth or step > tenth[key]:
            tenth[key] = step
            kept.append(p)
            last[key] = p
        else:
            last[key] = p
    for p in last.values():
        if not any(k is p for k in kept):
            kept.append(p)
    return kept


class Result(object):
    """One extsnap run: exit status, stdout (parsed when JSON was asked
    for), the stderr lines that are messages, the progress objects."""

    def __init__(self, cmd, rc, out, err, want_json):
        self.cmd = cmd
        self.rc = rc
        self.stdout = out
        self.stderr = err
        self.messages = []
        self.progress = []
        for line in err.splitlines():
            if line.startswith('{'):
                try:
                    self.progress.append(json.loads(line))
                    continue
                except ValueError:
                    pass
            if line.strip():
                self.messages.append(line)
        self.data = None
        if want_json and out.strip():
            try:
                self.data = json.loads(out)
            except ValueError:
                self.data = None

    def error_line(self):
        """extsnap's own one-line message (the last 'extsnap: ...' line)."""
        for line in reversed(self.messages):
            if line.startswith('extsnap:'):
                return line
        if self.messages:
            return self.messages[-1]
        return 'extsnap exited %d without a message' % self.rc


class Extsnap(object):
    """The extsnap binary on the target, with the module's root and
    directories."""

    def __init__(self, module):
        self.module = module
        p = module.params
        self.binary = p.get('binary') or module.get_bin_path('extsnap', required=True)
        self.where = []
        for opt in ('root', 'config_dir', 'snapshot_dir', 'run_dir', 'swtpm_dir'):
            if p.get(opt):
                self.where += ['--' + opt.replace('_', '-'), p[opt]]
        self.commands = []
        self.progress = []
        self._options = None

    def supports(self, command, option):
        """Does this extsnap know COMMAND's OPTION ('help --options' lists
        every command's table), so that an older binary is not given an
        option it would refuse?"""
        if self._options is None:
            self._options = set()
            rc, out, dummy = self.module.run_command([self.binary, 'help', '--options'])
            if rc == 0:
                for line in out.splitlines():
                    fields = line.split('\t')
                    if len(fields) >= 2:
                        self._options.add((fields[0], fields[1]))
        return (command, option) in self._options

    def run(self, argv, want_json=True, dry_run=False, image_command=False):
        """Run 'extsnap ARGV...' with the module's root and directories
        (only --root for the img commands); returns a Result."""
        opts = []
        if image_command:
            if self.module.params.get('root'):
                opts += ['--root', self.module.params['root']]
        else:
            opts += self.where
        if want_json:
            opts.append('--output=json')
        if dry_run:
            opts.append('--dry-run')
        if (not dry_run and argv[0] in PROGRESS_COMMANDS
                and self.supports(argv[0], '--progress')):
            opts.append('--progress=json')
        if image_command:
            # (the img commands take their options before the image, as qemu-img)
            cmd = [self.binary] + list(argv[:-1]) + opts + list(argv[-1:])
        else:
            cmd = [self.binary] + list(argv) + opts
        rc, out, err = self.module.run_command(cmd)
        self.commands.append(' '.join(cmd))
        r = Result(cmd, rc, out, err, want_json)
        self.progress += r.progress
        return r

    def fail(self, r, **extra):
        """The task fails with extsnap's one-line message and exit status."""
        self.module.fail_json(msg=r.error_line(), rc=r.rc, cmd=' '.join(r.cmd),
                              stdout=r.stdout, stderr=r.stderr, commands=self.commands,
                              **extra)

    def must(self, argv, **kw):
        """run(), and fail the task unless extsnap exited 0 with its output."""
        r = self.run(argv, **kw)
        if r.rc != 0 or (kw.get('want_json', True) and r.data is None):
            self.fail(r)
        return r

    def domain_names(self):
        """The domains of the config directory: its *.xml files, as
        'extsnap verify --all' counts them. The directory is looked up under
        root and must stay inside it."""
        root = self.module.params.get('root') or '/'
        config_dir = self.module.params.get('config_dir') or '/etc/libvirt/qemu'
        path = os.path.join(root, config_dir.lstrip('/'))
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip('/') + '/'):
            self.module.fail_json(msg='%s leads outside %s' % (path, root))
        try:
            names = os.listdir(real)
        except OSError as e:
            self.module.fail_json(msg='%s: cannot list the config directory: %s'
                                  % (path, e.strerror))
        return sorted(n[:-4] for n in names
                      if n.endswith('.xml') and len(n) > 4 and not n.startswith('.'))
