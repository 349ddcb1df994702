# Man pages and bash completion, generated at build time by es_docgen
# (tools/docgen), which links the same command tables as the binary: the
# pages' synopses and options and the completion's words cannot drift from
# what extsnap parses. Outputs: man/*.1 and man/*.1.gz (installed), and
# completion/extsnap.
file(GLOB ES_DOCGEN_SOURCES CONFIGURE_DEPENDS tools/docgen/*.c)
add_executable(es_docgen ${ES_DOCGEN_SOURCES})
target_link_libraries(es_docgen PRIVATE extsnap_cmd extsnap_lib)
target_include_directories(es_docgen PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/tools)

set(ES_MAN_BUILD_DIR ${CMAKE_CURRENT_BINARY_DIR}/man)
set(ES_COMPLETION_BUILD_FILE ${CMAKE_CURRENT_BINARY_DIR}/completion/extsnap)
set(ES_MAN_TEMPLATE ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/extsnap.1.in)
set(ES_COMPLETION_TEMPLATE ${CMAKE_CURRENT_SOURCE_DIR}/tools/docgen/extsnap.bash.in)

# One page per command: their names come from the table, so a stamp stands
# for the set (the old pages go first: a removed command loses its page).
add_custom_command(OUTPUT ${ES_MAN_BUILD_DIR}/stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${ES_MAN_BUILD_DIR}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ES_MAN_BUILD_DIR}
  COMMAND es_docgen man ${ES_MAN_TEMPLATE} ${ES_MAN_BUILD_DIR} ${PROJECT_VERSION}
  # gzip -n: no name or time stamp, so the package is reproducible.
  COMMAND sh -c "gzip -9nk ${ES_MAN_BUILD_DIR}/*.1"
  COMMAND ${CMAKE_COMMAND} -E touch ${ES_MAN_BUILD_DIR}/stamp
  DEPENDS es_docgen ${ES_MAN_TEMPLATE}
  COMMENT "Generating the man pages")
add_custom_command(OUTPUT ${ES_COMPLETION_BUILD_FILE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/completion
  COMMAND es_docgen completion ${ES_COMPLETION_TEMPLATE} ${ES_COMPLETION_BUILD_FILE}
  DEPENDS es_docgen ${ES_COMPLETION_TEMPLATE}
  COMMENT "Generating the bash completion")
add_custom_target(docs ALL DEPENDS ${ES_MAN_BUILD_DIR}/stamp ${ES_COMPLETION_BUILD_FILE})
