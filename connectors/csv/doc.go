// Package csv is the `csv` kind of source: a department's list of service points as a CSV file,
// read through connectors/fetch from a path or an HTTP(S) URL (auth from the environment, a rate
// limit, ETag / If-Modified-Since once a list was read to its end, transient failures retried by
// the runner's back-off), in UTF-8 (with or without a BOM) or Windows-1251, with a column mapping
// from the config. Each row becomes one service record document (servicedoc.Build). The file is the
// department's whole list, so the source is a connectors.Snapshotter named by the content's hash.
package csv
