# C++ code in a static library built beforehand (the test makes libcxxpart.a from
# ../features/cxx_part.cc with g++), linked into a C plugin that names no C++ runtime.
NAME = 'cxxarchive'
GCC_LIST = ['cxxarchive', 'libcxxpart.a']
