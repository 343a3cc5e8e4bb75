import FuzzSupport

Fuzz.main(fuzzNumpy)
