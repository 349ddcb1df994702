#!/usr/bin/python
# -*- coding: utf-8 -*-
# What extsnap list and disks say of each domain, as facts.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: extsnap_info
short_description: Domains, snapshots (tree, current), disks and backing chains of libvirt VMs, as facts
description:
  - Reads each domain with C(extsnap list --output=json) and C(extsnap
    disks --chain --output=json) on the target host and returns it as the
    fact C(extsnap_domains). Changes nothing (check mode is the same run).
version_added: "0.1.0"
author:
  - extsnap developers
options:
  domains:
    description:
      - The domains to read (names, or paths of domain XML files); one
        that cannot be read fails the task.
      - Default every domain of the config directory (its C(*.xml)
        files, as C(extsnap verify --all) finds them); one that cannot be
        read is returned with its I(error).
    type: list
    elements: str
    aliases: [domain]
  chains:
    description:
      - Also follow each disk's backing chain (formats, sizes; reads each
        image's header).
    type: bool
    default: true
extends_documentation_fragment:
  - extsnap.vm.extsnap
seealso:
  - module: extsnap.vm.extsnap_snapshot
  - module: extsnap.vm.extsnap_verify
'''

EXAMPLES = r'''
- name: Read every VM of the host
  extsnap.vm.extsnap_info:

- name: Names of the VMs that are not running
  ansible.builtin.debug:
    msg: "{{ extsnap_domains | rejectattr('running') | map(attribute='name') | list }}"

- name: Current snapshot of web
  ansible.builtin.debug:
    msg: "{{ (extsnap_domains | selectattr('name', 'eq', 'web') | first).current }}"
'''

RETURN = r'''
ansible_facts:
  description: The domains.
  returned: always
  type: complex
  contains:
    extsnap_domains:
      description:
        - One entry per domain, field names as in extsnap's JSON with C(-)
          turned into C(_).
        - C(name); C(running) (the VM runs, as extsnap's changing commands
          see it); C(pending_journal) (an interrupted operation waits for
          recovery); C(current) (the current snapshot's name or null);
          C(snapshots) (C(extsnap list --output=json)'s, oldest first);
          C(tree) (the snapshots as nested C(name), C(current),
          C(children)); C(disks) (C(extsnap disks --chain --output=json)'s,
          each with its C(chain)); C(bad_files); C(error) (why the domain
          could not be read, or null).
      type: list
      elements: dict
domains:
  description: The same list, for C(register).
  returned: always
  type: list
  elements: dict
commands:
  description: The extsnap command lines run.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.extsnap.vm.plugins.module_utils.extsnap import (
    COMMON_ARGS, Extsnap, snake)


def tree(snapshots):
    """The snapshots as nested dicts, roots first (oldest first, as listed):
    a root has no parent, or one that is not among them."""
    names = set(s['name'] for s in snapshots)
    kids = {}
    for s in snapshots:
        parent = s.get('parent') if s.get('parent') in names else None
        kids.setdefault(parent, []).append(s)

    def node(s, depth):
        below = kids.get(s['name'], []) if depth <= len(snapshots) else []
        return dict(name=s['name'], current=s.get('current', False),
                    children=[node(k, depth + 1) for k in below])
    return [node(s, 0) for s in kids.get(None, [])]


def read_domain(x, name, chains):
    """One domain's entry; the failing run's message as its error."""
    entry = dict(name=name, error=None)
    r = x.run(['list', name])
    if r.rc != 0 or r.data is None:
        entry['error'] = r.error_line()
        return entry, r
    listing = snake(r.data)
    entry['name'] = listing.get('domain', name)
    for k in ('current', 'running', 'pending_journal', 'snapshots', 'bad_files'):
        entry[k] = listing.get(k)
    entry['tree'] = tree(listing['snapshots'])
    r = x.run(['disks', name] + (['--chain'] if chains else []))
    if r.rc != 0 or r.data is None:
        entry['error'] = r.error_line()
        return entry, r
    entry['disks'] = snake(r.data)['disks']
    return entry, None


def main():
    spec = dict(
        domains=dict(type='list', elements='str', aliases=['domain']),
        chains=dict(type='bool', default=True),
    )
    spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    x = Extsnap(module)
    named = p['domains'] is not None
    domains = []
    for name in (p['domains'] if named else x.domain_names()):
        entry, failed = read_domain(x, name, p['chains'])
        if failed is not None and named:
            x.fail(failed)
        domains.append(entry)
    module.exit_json(changed=False, commands=x.commands, domains=domains,
                     msg='%d domain%s read' % (len(domains), '' if len(domains) == 1 else 's'),
                     ansible_facts=dict(extsnap_domains=domains))


if __name__ == '__main__':
    main()
