NAME = 'cryptocaller'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['cryptocaller']
