import FuzzSupport

Fuzz.main(fuzzIDX)
