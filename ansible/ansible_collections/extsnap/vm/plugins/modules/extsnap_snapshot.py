#!/usr/bin/python
# -*- coding: utf-8 -*-
# One named external snapshot of a libvirt domain, as a state: extsnap
# create, delete, revert or commit when the domain is not in that state
# already, nothing when it is.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: extsnap_snapshot
short_description: Create, delete, revert to or commit into an external snapshot of a libvirt VM
description:
  - Puts a libvirt/QEMU domain's snapshot I(name) in the state asked for,
    with the extsnap binary on the target host, which edits libvirt's files
    and the qcow2 images itself (no libvirtd, no QEMU needed; a running VM
    is changed through its QMP socket where extsnap can reach one).
  - Idempotent. The domain is read first (C(extsnap list --output=json));
    extsnap runs only when the state differs, so a second run of the same
    task reports C(changed=false).
  - An operation an earlier run left unfinished (a lost connection, a
    killed process) is finished or undone first with C(extsnap recover),
    which counts as a change; extsnap's journal guarantees that no run is
    ever left half done.
  - Check mode runs extsnap with C(--dry-run), which is refused exactly
    when the real run would be, so a refusal fails the task in check mode
    too. With C(--diff) the plan extsnap prints is shown.
  - Merges (I(state=absent), I(state=current-committed)) run with
    C(--progress=json) when the binary has it; the progress lines come
    back in the result's I(progress), visible with C(-v).
version_added: "0.1.0"
author:
  - extsnap developers
options:
  domain:
    description:
      - The domain's name (its config is I(config_dir)/DOMAIN.xml) or the
        path of a domain XML file.
    type: str
    required: true
  name:
    description:
      - The snapshot's name.
      - With I(state=reverted) or I(state=current-committed) it may be
        C(base), the state before the first snapshot.
    type: str
    required: true
  state:
    description:
      - C(present) the snapshot exists (C(extsnap create) when it does not;
        an existing one is kept when it has the disks of I(disks), and its
        description is set to I(description) with C(extsnap describe)).
      - C(absent) the snapshot does not exist (C(extsnap delete) merges its
        overlays down and re-parents its children).
      - C(reverted) the disks hold the snapshot's state (C(extsnap
        revert)). Unchanged when the snapshot is current, the config's
        disks are its live overlays and those hold no data yet; anything
        the guest wrote since is discarded by the revert. For C(base), when
        no snapshot is current and no disk's top image holds data.
      - C(current-committed) every snapshot after I(name) up to the
        current one is merged into I(name)'s images and deleted (C(extsnap
        commit DOMAIN NAME CURRENT)), so that I(name) (or with C(base) no
        snapshot) is current; unchanged when I(name) is already current.
    type: str
    choices: [present, absent, reverted, current-committed]
    default: present
  description:
    description:
      - The snapshot's description (I(state=present)); an empty string
        removes it. Not given, an existing snapshot's description is left
        as it is.
    type: str
  disks:
    description:
      - The disks (targets such as C(vda)) to snapshot (extsnap's
        C(--disk)); the others are recorded with C(snapshot='no').
      - Default every writable disk with a local image.
      - An existing snapshot must have exactly these disks, or the task
        fails (a snapshot's disks cannot be changed).
    type: list
    elements: str
  qmp:
    description:
      - The QMP socket of the running VM (a path on the target), for
        create, delete, commit and recover (extsnap's C(--qmp)).
    type: path
  vm_state:
    description:
      - Keep a copy of the VM's NVRAM and vTPM state with a new snapshot,
        and put it back on revert. C(false) passes C(--no-vm-state).
    type: bool
    default: true
extends_documentation_fragment:
  - extsnap.vm.extsnap
seealso:
  - module: extsnap.vm.extsnap_info
  - module: extsnap.vm.extsnap_verify
'''

EXAMPLES = r'''
- name: Snapshot web before patching it
  extsnap.vm.extsnap_snapshot:
    domain: web
    name: pre-patch
    description: before the {{ ansible_date_time.date }} patches

- name: Snapshot only the system disk
  extsnap.vm.extsnap_snapshot:
    domain: db
    name: pre-upgrade
    disks: [vda]

- name: Go back to it
  extsnap.vm.extsnap_snapshot:
    domain: web
    name: pre-patch
    state: reverted

- name: Merge every snapshot into the base images before a storage migration
  extsnap.vm.extsnap_snapshot:
    domain: web
    name: base
    state: current-committed

- name: Delete it (its overlays merged down), in a rescue system
  extsnap.vm.extsnap_snapshot:
    domain: web
    name: pre-patch
    state: absent
    root: /mnt/sysimage
'''

RETURN = r'''
msg:
  description: What was done, would be done, or why nothing was needed.
  returned: always
  type: str
  sample: create snapshot pre-patch of domain web
plan:
  description:
    - extsnap's plan of the change (its C(--output=json), field names with
      C(-) turned into C(_)), C(dry_run) true in check mode.
  returned: changed
  type: dict
recovered:
  description: What C(extsnap recover) did (or would do) with an interrupted operation first.
  returned: when an operation was pending
  type: dict
snapshot:
  description: The snapshot as C(extsnap show --output=json) shows it (fields with C(_)).
  returned: when the snapshot exists after the task
  type: dict
current:
  description: The name of the current snapshot after the task, or null.
  returned: always
  type: str
progress:
  description:
    - C(--progress=json) lines of the merges, per disk the first line past
      each tenth of the work and the last one.
  returned: when extsnap reported progress
  type: list
  elements: dict
messages:
  description: extsnap's other lines on stderr (notes, warnings).
  returned: always
  type: list
  elements: str
commands:
  description: The extsnap command lines run.
  returned: always
  type: list
  elements: str
rc:
  description: extsnap's exit status (on failure).
  returned: failed
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.extsnap.vm.plugins.module_utils.extsnap import (
    COMMON_ARGS, Extsnap, progress_summary, snake)


def has_data(x, image):
    """Does IMAGE itself hold guest data (an img map extent at depth 0)? An
    image that cannot be mapped counts as changed: the operation decides."""
    r = x.run(['img', 'map', '-U', image], image_command=True)
    if r.rc != 0 or not isinstance(r.data, list):
        return True
    return any(e.get('depth') == 0 for e in r.data)


def is_reverted(x, dom, name, listing, snap):
    """Do the disks hold NAME's state: NAME current, the config's disks on
    its live overlays, and those still empty?"""
    disks = x.must(['disks', dom]).data['disks']
    if name == 'base':
        if listing['current'] is not None:
            return False
        if not listing['snapshots']:
            return True
        tops = [d['source'] for d in disks if d.get('device') == 'disk'
                and not d.get('readonly') and d.get('source') and d.get('driver-type') == 'qcow2']
        return not any(has_data(x, t) for t in tops)
    if listing['current'] != name:
        return False
    live = snap.get('revert-disks') or [d for d in snap['disks'] if d.get('source')]
    config = dict((d['target'], d.get('source')) for d in disks)
    for d in live:
        if config.get(d['name']) != d['source'] or has_data(x, d['source']):
            return False
    return True


def decide(module, x, listing):
    """The extsnap command that brings the domain to the state asked for,
    or None, with a message either way."""
    p = module.params
    dom, name, state = p['domain'], p['name'], p['state']
    snaps = dict((s['name'], s) for s in listing['snapshots'])
    snap = snaps.get(name)
    current = listing['current']
    if state == 'present':
        if snap is None:
            argv = ['create', dom, name]
            if p['description'] is not None:
                argv += ['--description', p['description']]
            if p['disks']:
                argv.append('--disk=' + ','.join(p['disks']))
            if not p['vm_state']:
                argv.append('--no-vm-state')
            return argv + qmp(p), None
        if p['disks']:
            have = sorted(d['name'] for d in snap['disks'] if d.get('snapshot') == 'external')
            want = sorted(set(p['disks']))
            if have != want:
                module.fail_json(msg='snapshot %s of domain %s exists with disks %s, not %s: '
                                 'a snapshot\'s disks cannot change; delete it first or '
                                 'choose another name'
                                 % (name, dom, ', '.join(have) or 'none', ', '.join(want)),
                                 commands=x.commands)
        if p['description'] is not None and (snap.get('description') or '') != p['description']:
            return ['describe', dom, name, '--description', p['description']], None
        return None, 'snapshot %s of domain %s is present' % (name, dom)
    if state == 'absent':
        if snap is None:
            return None, 'domain %s has no snapshot %s' % (dom, name)
        return ['delete', dom, name] + qmp(p), None
    if snap is None and name != 'base':
        module.fail_json(msg='domain %s has no snapshot named \'%s\'' % (dom, name),
                         commands=x.commands)
    if state == 'reverted':
        if is_reverted(x, dom, name, listing, snap):
            return None, 'domain %s is at snapshot %s' % (dom, name)
        argv = ['revert', dom, name]
        if not p['vm_state']:
            argv.append('--no-vm-state')
        return argv, None
    # current-committed
    if current == name or (current is None and name == 'base'):
        return None, 'nothing after %s to commit in domain %s' % (name, dom)
    if current is None:
        module.fail_json(msg='no snapshot of domain %s is current: nothing to commit into %s'
                         % (dom, name), commands=x.commands)
    return ['commit', dom, name, current] + qmp(p), None


def qmp(p):
    return ['--qmp', p['qmp']] if p['qmp'] else []


def recover_first(module, x, result):
    """Finish or undo an operation an earlier run left in the journal (the
    state read before it is not the domain's); True when the task is done
    (check mode: what follows depends on the recovery)."""
    p = module.params
    argv = ['recover', p['domain']] + qmp(p)
    if not p['vm_state']:
        argv.append('--no-vm-state')
    r = x.must(argv, dry_run=module.check_mode)
    rec = r.data
    what = (rec.get('operation') or {}).get('summary', 'an operation')
    result['recovered'] = snake(rec)
    result['changed'] = True
    result['messages'] += r.messages
    if module.check_mode:
        result['msg'] = ('an interrupted operation (%s) would be %s first; what this task '
                         'does then depends on it' % (what, rec.get('action', 'recovered')))
        return True
    return False


def main():
    spec = dict(
        domain=dict(type='str', required=True),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present',
                   choices=['present', 'absent', 'reverted', 'current-committed']),
        description=dict(type='str'),
        disks=dict(type='list', elements='str'),
        qmp=dict(type='path'),
        vm_state=dict(type='bool', default=True),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    x = Extsnap(module)
    dom, name = module.params['domain'], module.params['name']
    result = dict(changed=False, messages=[], commands=x.commands)

    listing = x.must(['list', dom]).data
    if listing.get('pending-journal'):
        if recover_first(module, x, result):
            result['current'] = listing.get('current')
            module.exit_json(**result)
        listing = x.must(['list', dom]).data

    argv, why = decide(module, x, listing)
    if argv is None:
        result['msg'] = why
    else:
        if module._diff:
            shown = x.run(argv, want_json=False, dry_run=True)
            if shown.rc != 0:
                x.fail(shown)
            result['diff'] = dict(prepared=shown.stdout)
        r = x.must(argv, dry_run=module.check_mode)
        result['plan'] = snake(r.data)
        result['changed'] = True
        result['messages'] += r.messages
        summary = r.data.get('summary') or ' '.join(argv)
        result['msg'] = ('would ' + summary) if module.check_mode else summary
        if not module.check_mode:
            listing = x.must(['list', dom]).data
    result['current'] = listing.get('current')
    if any(s['name'] == name for s in listing['snapshots']):
        result['snapshot'] = snake(x.must(['show', dom, name]).data)
    if x.progress:
        result['progress'] = progress_summary(x.progress)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
