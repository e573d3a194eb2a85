# SPDX-License-Identifier: Apache-2.0
# fuzz_replay: the libFuzzer target fuzz_mime.c driven by a plain main
# (replay.c) over the seed corpus, so every seed and every crash
# reproducer saved in corpus/mime is a regression test in the normal build
# and, in the MR_SANITIZE build tree, under ASan+UBSan. Included from
# tests/CMakeLists.txt; needs the mailroom_core target.
add_executable(fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/replay.c
                           ${CMAKE_CURRENT_LIST_DIR}/fuzz_mime.c)
target_link_libraries(fuzz_replay PRIVATE mailroom_core)
add_test(NAME fuzz/replay
         COMMAND fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/mime)
set_tests_properties(fuzz/replay PROPERTIES TIMEOUT 300)
