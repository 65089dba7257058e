# xsimd (header-only) for user-written element-wise functors. Debian 12's xsimd 8.1 config makes
# its target link a library named "xtl" that does not exist; xsimd does not need it.
find_package(xsimd REQUIRED)
if(TARGET xsimd)
  get_target_property(_lmkit_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_lmkit_xsimd_links)
    list(REMOVE_ITEM _lmkit_xsimd_links xtl)
    set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_lmkit_xsimd_links}")
  endif()
endif()
