NAME = 'hello'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['hello']
