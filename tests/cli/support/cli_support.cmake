# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the CLI contract scripts: run the command, check exit status and error lines.
function(run expected_rc out_var err_var)
  execute_process(COMMAND ${POLYINFER} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL expected_rc)
    message(FATAL_ERROR "polyinfer ${ARGN}: exit ${rc}, expected ${expected_rc}\n"
                        "stdout: ${out}\nstderr: ${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
endfunction()

function(expect_one_line_error err what)
  string(STRIP "${err}" stripped)
  string(FIND "${stripped}" "\n" newline)
  if(NOT newline EQUAL -1 OR stripped STREQUAL "")
    message(FATAL_ERROR "expected one error line about ${what}, got:\n${err}")
  endif()
  string(FIND "${stripped}" "${what}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "error line does not name '${what}':\n${err}")
  endif()
endfunction()
