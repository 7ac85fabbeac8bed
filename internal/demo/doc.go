// Package demo owns the demo data of socialhub: a deterministic, Moscow-like list of a social
// protection department's service points, exported as CSV the way department systems do (UTF-8
// or Windows-1251, ";" separated), and a second department's HSDS 3.0 API (HSDSFeed) that
// describes some of the same institutions and points its own way, with ground truth rows tying
// the two together (HSDSFeedTruth). A seed gives byte-identical output, and the manifests say which
// records are valid and which are broken on purpose (and what validation will report for them), so
// `socialhub run --demo`, tests and benchmarks can check every record's fate.
package demo
