import FuzzSupport

Fuzz.main(fuzzCheckpoint)
