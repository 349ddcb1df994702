# -*- coding: utf-8 -*-
# The options every extsnap.vm module takes: where extsnap is and which
# host's libvirt files it works on.

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  binary:
    description:
      - Path of the extsnap binary on the target host.
      - Default is C(extsnap) found on the target's C(PATH).
    type: path
  root:
    description:
      - Take every libvirt path and every absolute image path (backing file
        names included) under this directory, for example a host's root
        mounted in a rescue system (extsnap's C(--root)).
      - The directories below are paths as seen under I(root).
    type: path
  config_dir:
    description:
      - Directory of the domain configs (extsnap's C(--config-dir);
        default C(/etc/libvirt/qemu)).
    type: path
  snapshot_dir:
    description:
      - Directory of the snapshot metadata (extsnap's C(--snapshot-dir);
        default C(/var/lib/libvirt/qemu/snapshot)).
    type: path
  run_dir:
    description:
      - libvirt's QEMU run directory, where extsnap sees whether a VM runs
        (extsnap's C(--run-dir); default C(/run/libvirt/qemu)).
    type: path
  swtpm_dir:
    description:
      - Where libvirt keeps a vTPM's state, one directory per domain UUID
        (extsnap's C(--swtpm-dir); default C(/var/lib/libvirt/swtpm); a
        session domain's is C(~/.config/libvirt/qemu/swtpm)).
    type: path
requirements:
  - extsnap on the target host (the same version as this collection, or
    one whose C(help --options) lists the options used).
notes:
  - extsnap changes libvirt's files directly, so it refuses while libvirtd
    or virtqemud runs on that root; the task then fails with extsnap's
    message.
'''
