// Package demo owns the demo data of socialhub: a deterministic, Moscow-like list of a social
// protection department's service points, exported as CSV the way department systems do (UTF-8
// or Windows-1251, ";" separated). A seed gives byte-identical output, and the manifest says which
// rows are valid and which are broken on purpose (and what validation will report for them), so
// `socialhub run --demo`, tests and benchmarks can check every record's fate.
package demo
