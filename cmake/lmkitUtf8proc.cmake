# utf8proc (Unicode character classes, normalisation, case folding). Debian's libutf8proc-dev has
# a pkg-config file but no CMake package, so the imported target is made here, for the build and
# for lmkitConfig.cmake alike.
if(NOT TARGET utf8proc::utf8proc)
  find_path(LMKIT_UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
  find_library(LMKIT_UTF8PROC_LIBRARY NAMES utf8proc REQUIRED)
  add_library(utf8proc::utf8proc UNKNOWN IMPORTED)
  set_target_properties(utf8proc::utf8proc PROPERTIES IMPORTED_LOCATION "${LMKIT_UTF8PROC_LIBRARY}"
                                                      INTERFACE_INCLUDE_DIRECTORIES "${LMKIT_UTF8PROC_INCLUDE_DIR}")
endif()
