NAME = 'multi'
GCC_LIST = ['main', 'alpha', 'beta', 'gamma']
