NAME = 'needscurl'
LIBS = ['-lcurl']
GCC_LIST = ['needscurl']
