# Every uwsgiplugin.py feature uwsgiconfig.py knows, in one plugin.
NAME = 'features'
CFLAGS = ['-DFEATURE_WORD=\\"cflags\\"']
LDFLAGS = ['-Wl,--as-needed']
LIBS = ['-lstdc++', '-lm']
REQUIRES = ['python']
GCC_LIST = [
    'features',        # bare name: features.c
    'cxx_part.cc',     # C++
    'prebuilt.o',      # an object made before the build (the test compiles it)
    'libarchive.a',    # a static library, taken relative to the build's directory
]


def post_build(uc):
    print("post_build ran for %s" % NAME)
