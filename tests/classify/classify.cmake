# SPDX-License-Identifier: Apache-2.0
# Classification measured on the sisimai corpus (issue 4): the share of
# bounces and auto-replies classified right, and every miss, which must be
# listed with its explanation in known-misses.tsv. Skipped (77) without
# the shared folder.
add_executable(classify_corpus ${CMAKE_CURRENT_LIST_DIR}/classify_corpus.c)
target_link_libraries(classify_corpus PRIVATE mailroom_core PkgConfig::JANSSON)
add_test(NAME classify/sisimai
  COMMAND classify_corpus --known ${CMAKE_CURRENT_LIST_DIR}/known-misses.tsv)
set_tests_properties(classify/sisimai PROPERTIES
  ENVIRONMENT "MR_SHARED=${CMAKE_SOURCE_DIR}/../shared"
  SKIP_RETURN_CODE 77 TIMEOUT 300)
