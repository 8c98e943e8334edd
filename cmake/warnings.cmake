# Warnings on and clean; -Werror in CI (EMBEDSTREAM_WERROR=ON), never in the
# fuzz build (clang, EMBEDSTREAM_FUZZ=ON): its warnings are not the gate there.
# Every flag here is understood by both g++ and clang++.
function(embedstream_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual)
  if(EMBEDSTREAM_WERROR AND NOT EMBEDSTREAM_FUZZ)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
