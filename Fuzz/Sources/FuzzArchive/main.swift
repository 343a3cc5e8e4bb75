import FuzzSupport

Fuzz.main(fuzzArchive)
