# SPDX-License-Identifier: Apache-2.0
# The `polyinfer` command-line contract: exit statuses, one-line errors, tokenize/detokenize/inspect
# outputs on the fixtures. Run by ctest as: cmake -DPOLYINFER=... -DSHARED_DIR=... -P contract.cmake
cmake_minimum_required(VERSION 3.22)

include(${CMAKE_CURRENT_LIST_DIR}/support/cli_support.cmake)

# Usage errors exit 2.
run(2 out err)
run(2 out err no-such-command)
run(2 out err tokenize)
run(2 out err tokenize model --bogus-option x)
run(2 out err detokenize model 1 two 3)
run(0 out err --version)

# Other errors exit 1 with one line naming what failed.
set(missing "${CMAKE_CURRENT_BINARY_DIR}/no-such-model.gguf")
run(1 out err tokenize ${missing} --text hi)
expect_one_line_error("${err}" "no-such-model.gguf")

set(fixtures "${SHARED_DIR}/fixtures")
if(NOT EXISTS "${fixtures}/models/tiny-llama/cases.json")
  if(DEFINED ENV{CI})
    message(FATAL_ERROR "fixtures missing under CI: ${fixtures}")
  endif()
  message(WARNING "fixtures missing, fixture checks not run: ${fixtures}")
  return()
endif()

set(scratch "${CMAKE_CURRENT_BINARY_DIR}/cli-contract")
file(MAKE_DIRECTORY ${scratch})
execute_process(COMMAND head -c 1000 ${fixtures}/models/tiny-llama/gguf/tiny-llama-q8_0.gguf
                OUTPUT_FILE ${scratch}/truncated.gguf)
run(1 out err inspect ${scratch}/truncated.gguf)
expect_one_line_error("${err}" "truncated.gguf")
file(WRITE ${scratch}/bad-magic.gguf "GGUX not a gguf file at all, just text")
run(1 out err tokenize ${scratch}/bad-magic.gguf --text hi)
expect_one_line_error("${err}" "bad-magic.gguf")

# tokenize --special gives the prompt ids of cases.json (HF folder, and GGUF as llama.cpp does).
foreach(model tiny-llama tiny-qwen2)
  file(READ ${fixtures}/models/${model}/cases.json cases)
  string(JSON n LENGTH "${cases}" cases)
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    string(JSON kind GET "${cases}" cases ${i} kind)
    string(JSON text GET "${cases}" cases ${i} text)
    string(JSON ids_json GET "${cases}" cases ${i} ids)
    string(REGEX REPLACE "[][,]" " " ids "${ids_json}")
    string(REGEX REPLACE "[ \t\r\n]+" " " ids "${ids}")
    string(STRIP "${ids}" ids)
    set(forms ${fixtures}/models/${model})
    if(NOT kind STREQUAL "whitespace")  # llama.cpp's leading-space rule differs (fixtures README)
      list(APPEND forms ${fixtures}/models/${model}/gguf/${model}-q8_0.gguf)
    endif()
    foreach(form IN LISTS forms)
      file(WRITE ${scratch}/prompt.txt "${text}")  # a file: CMake lists would split on ';'
      run(0 out err tokenize ${form} --file ${scratch}/prompt.txt --special)
      string(STRIP "${out}" out)
      if(NOT out STREQUAL ids)
        message(FATAL_ERROR "tokenize ${form} case ${i} (${kind}):\n got ${out}\nwant ${ids}")
      endif()
      set(skip --skip-special)
      if(kind STREQUAL "chat_template")
        set(skip)  # the special tokens are part of this text
      endif()
      run(0 out err detokenize ${form} ${skip} ${ids})
      string(REGEX REPLACE "\n$" "" out "${out}")
      if(form MATCHES "\\.gguf$")
        # llama.cpp keeps the first piece's space when it drops a leading BOS (llama_detokenize).
        string(REGEX REPLACE "^ " "" out "${out}")
      endif()
      if(NOT out STREQUAL text)
        message(FATAL_ERROR "detokenize ${form} case ${i}:\n got '${out}'\nwant '${text}'")
      endif()
    endforeach()
  endforeach()
endforeach()

# inspect --json is one JSON object with the model's configuration.
run(0 out err inspect ${fixtures}/models/tiny-qwen2 --json)
string(JSON arch GET "${out}" config architecture)
string(JSON theta GET "${out}" config rope_theta)
string(JSON kind GET "${out}" tokenizer kind)
if(NOT arch STREQUAL "qwen2" OR NOT theta EQUAL 1000000 OR NOT kind STREQUAL "byte-bpe")
  message(FATAL_ERROR "inspect --json: architecture ${arch}, rope_theta ${theta}, kind ${kind}")
endif()
run(0 out err inspect ${fixtures}/vocab/ggml-vocab-bert-bge.gguf --json)
string(JSON kind GET "${out}" tokenizer kind)
if(NOT kind STREQUAL "wordpiece")
  message(FATAL_ERROR "inspect vocab-only bert GGUF: tokenizer kind ${kind}")
endif()
message(STATUS "cli contract: all checks passed")
