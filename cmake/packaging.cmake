# Install rules and the Debian package (cpack -G DEB in the build tree gives
# extsnap_VERSION_ARCH.deb). What is installed: the binary, the man pages and
# the bash completion generated from the command tables (cmake/docs.cmake),
# README.md, the Ansible collection, and the license file when the
# repository has one.
include(GNUInstallDirs)

install(TARGETS extsnap RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${ES_MAN_BUILD_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  FILES_MATCHING PATTERN "*.1.gz")
install(FILES ${ES_COMPLETION_BUILD_FILE}
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME extsnap)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The Ansible collection extsnap.vm, where ansible looks by default
# (/usr/share/ansible/collections); ansible itself is not a dependency.
install(DIRECTORY ansible/ansible_collections/extsnap/vm
  DESTINATION ${CMAKE_INSTALL_DATADIR}/ansible/collections/ansible_collections/extsnap
  PATTERN __pycache__ EXCLUDE PATTERN "*.pyc" EXCLUDE PATTERN "tests/output" EXCLUDE)
foreach(license LICENSE LICENSE.md COPYING)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${license})
    # Debian's place and name for it (policy 12.5).
    install(FILES ${license} DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
  endif()
endforeach()

set(CPACK_PACKAGE_NAME extsnap)
set(CPACK_PACKAGE_VENDOR "extsnap developers")
set(CPACK_PACKAGE_CONTACT "extsnap developers <extsnap@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "external qcow2 snapshot chains of libvirt/QEMU VMs without libvirtd")
set(CPACK_PACKAGE_DESCRIPTION
  "extsnap creates, lists, reverts, deletes and merges external qcow2 snapshots of
libvirt/QEMU virtual machines by editing libvirt's files and the qcow2 images
itself, with no libvirtd and no QEMU process: in a rescue shell, in batch
scripts and in CI. Running VMs are handled through their QMP socket.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)          # extsnap_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binary's shared libraries, by their Debian package names
# (dpkg-shlibdeps, from dpkg-dev; it needs `file`).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "man-db, bash-completion")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "qemu-utils, ansible-core")
set(CPACK_STRIP_FILES ON)
include(CPack)
