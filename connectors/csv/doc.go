// Package csv is the `csv` kind of source: a department's list of service points as a CSV file,
// read from a path or an HTTP(S) URL (with ETag / If-Modified-Since), in UTF-8 (with or without a
// BOM) or Windows-1251, with a column mapping from the config. Each row becomes one service record
// document (an HSDS 3.0 service with its organization and service point).
package csv
