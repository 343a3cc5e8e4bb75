import FuzzSupport

Fuzz.main(fuzzCSV)
