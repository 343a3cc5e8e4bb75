/// Data sets shipped inside the package, so demos and tests need no download.
public enum BundledData {}
