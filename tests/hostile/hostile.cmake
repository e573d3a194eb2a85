# SPDX-License-Identifier: Apache-2.0
# Hostile-input suite: every case of ../shared/vectors/gen_hostile_mime.py
# (generated at test time, about 95 MB) through `mailroom parse`, with time
# and memory bounds. Skipped (77) without the shared folder. In a build
# tree configured with -DMR_SANITIZE=ON the same test runs the ASan+UBSan
# binary, with the looser bounds the script documents.
if(NOT MR_PYTHON3)
  find_program(MR_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
endif()
if(NOT MR_SHARED_DIR)
  set(MR_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared)
endif()
if(MR_PYTHON3)
  set(MR_HOSTILE_ARGS --mailroom $<TARGET_FILE:mailroom>
      --shared ${MR_SHARED_DIR})
  if(MR_SANITIZE)
    list(APPEND MR_HOSTILE_ARGS --asan)
  endif()
  add_test(NAME hostile/mime
    COMMAND ${MR_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/hostile_test.py
            ${MR_HOSTILE_ARGS})
  # Generation takes ~15 s; 50 cases at up to 2 s (20 s under ASan) each.
  set_tests_properties(hostile/mime PROPERTIES TIMEOUT 1500
                       SKIP_RETURN_CODE 77)
endif()
