# SPDX-License-Identifier: Apache-2.0
# End-to-end tests: pytest (Debian's, so /usr/bin/python3) against a real
# `mailroom serve` on loopback. One CTest entry per file, so they run in
# parallel and a failure names its scenario.
file(GLOB MR_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/test_*.py)
foreach(t ${MR_E2E_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME e2e/${name}
           COMMAND /usr/bin/python3 -m pytest -q -s -p no:cacheprovider ${t})
  set_tests_properties(e2e/${name} PROPERTIES
    ENVIRONMENT "MAILROOM_BIN=$<TARGET_FILE:mailroom>;MR_SHARED=${CMAKE_SOURCE_DIR}/../shared;MR_E2E_SANITIZER=$<BOOL:${MR_SANITIZE}>"
    TIMEOUT 600)
endforeach()
