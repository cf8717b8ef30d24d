# A C++ plugin as issue 25 wrote it: one .cc source that uses std::string, no LIBS.
NAME = 'cxx'
GCC_LIST = ['cxx.cc']
