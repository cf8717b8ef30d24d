NAME = 'pyapi'
GCC_LIST = ['pyapi']
