#!/usr/bin/python
# -*- coding: utf-8 -*-
# extsnap verify as a task: the findings become facts, problems fail it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: extsnap_verify
short_description: Check libvirt VMs' snapshot chains, images and metadata with extsnap verify
description:
  - Runs C(extsnap verify --output=json) on the target host for the
    domains named, or for every domain of the config directory, and
    returns its findings as the fact C(extsnap_verify).
  - Fails when problems are found (extsnap's exit status 2), or when a
    domain could not be checked (exit status 1); warnings fail only with
    I(strict).
  - Changes nothing, so it runs the same in check mode.
  - Each image's check is reported with C(--progress=json) when the
    binary has it; the lines come back in I(progress) (C(-v)).
version_added: "0.1.0"
author:
  - extsnap developers
options:
  domains:
    description:
      - The domains to check (names, or paths of domain XML files).
      - Default every domain of the config directory (C(verify --all)).
    type: list
    elements: str
    aliases: [domain]
  strict:
    description:
      - Warnings (leaked clusters, unreferenced images ...) count as
        problems (extsnap's C(--strict)).
    type: bool
    default: false
  fail_on_problems:
    description:
      - Fail the task when problems are found. C(false) returns them
        (and the facts) without failing; a domain that could not be
        checked still fails.
    type: bool
    default: true
extends_documentation_fragment:
  - extsnap.vm.extsnap
seealso:
  - module: extsnap.vm.extsnap_info
'''

EXAMPLES = r'''
- name: Verify every chain of every VM each night
  extsnap.vm.extsnap_verify:
    strict: true

- name: Check two VMs, report without failing
  extsnap.vm.extsnap_verify:
    domains: [web, db]
    fail_on_problems: false
  register: check

- name: Show the problems
  ansible.builtin.debug:
    msg: "{{ item.domain }}: {{ item.problems | map(attribute='code') | join(', ') }}"
  loop: "{{ ansible_facts.extsnap_verify | selectattr('result', 'ne', 'clean') }}"
'''

RETURN = r'''
ansible_facts:
  description: The findings.
  returned: success, and when I(fail_on_problems=false)
  type: complex
  contains:
    extsnap_verify:
      description:
        - One entry per domain as C(extsnap verify --output=json) prints it,
          field names with C(-) turned into C(_) (C(domain), C(result)
          C(clean)/C(problems)/C(failed), C(error), C(snapshots),
          C(images_checked), C(errors), C(warnings), C(problems) with
          C(code), C(severity), C(file), C(message)).
      type: list
      elements: dict
results:
  description: The same list (also on failure).
  returned: always
  type: list
  elements: dict
problems:
  description: Every problem of every domain, one line each (domain, severity, code, file, message).
  returned: always
  type: list
  elements: str
exit_status:
  description: extsnap verify's exit status (0 clean, 2 problems, 1 could not check).
  returned: always
  type: int
rc:
  description: The same, when the task fails.
  returned: failed
  type: int
progress:
  description: C(--progress=json) lines of the image checks, per image the first past each tenth and the last.
  returned: when extsnap reported progress
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.extsnap.vm.plugins.module_utils.extsnap import (
    COMMON_ARGS, Extsnap, progress_summary, snake)


def main():
    spec = dict(
        domains=dict(type='list', elements='str', aliases=['domain']),
        strict=dict(type='bool', default=False),
        fail_on_problems=dict(type='bool', default=True),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    x = Extsnap(module)
    argv = ['verify'] + (p['domains'] or ['--all'])
    if p['strict']:
        argv.append('--strict')
    r = x.run(argv)
    if r.rc not in (0, 2) and r.data is None:
        x.fail(r)
    results = snake(r.data or [])
    lines = []
    for d in results:
        if d.get('error'):
            lines.append('%s: could not be checked: %s' % (d['domain'], d['error']))
        for f in d.get('problems') or []:
            lines.append('%s: %s %s %s: %s' % (d['domain'], f.get('severity'), f.get('code'),
                                               f.get('file'), f.get('message')))
    # (rc only on failure: Ansible takes a non-zero rc for a failed task)
    out = dict(changed=False, exit_status=r.rc, results=results, problems=lines,
               commands=x.commands)
    if x.progress:
        out['progress'] = progress_summary(x.progress)
    checked = '%d domain%s checked' % (len(results), '' if len(results) == 1 else 's')
    if r.rc == 1:
        # (with --output=json the reason is the domain's error, not a line on stderr)
        why = ['%s: %s' % (d['domain'], d.get('error') or r.error_line())
               for d in results if d.get('result') == 'failed']
        module.fail_json(msg='%s; could not check %s' % (checked, '; '.join(why) or r.error_line()),
                         rc=r.rc, **out)
    if r.rc == 2 and p['fail_on_problems']:
        bad = [d['domain'] for d in results if d.get('result') != 'clean']
        module.fail_json(msg='%s; problems in %s: %s' % (checked, ', '.join(bad),
                                                         '; '.join(lines[:5])), rc=r.rc, **out)
    out['msg'] = checked + ('; problems found' if r.rc == 2 else '; clean')
    out['ansible_facts'] = dict(extsnap_verify=results)
    module.exit_json(**out)


if __name__ == '__main__':
    main()
