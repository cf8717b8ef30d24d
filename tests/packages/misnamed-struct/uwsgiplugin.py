NAME = 'misnamed'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['misnamed']
