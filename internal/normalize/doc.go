// Package normalize holds the small, pure functions that turn what registries and NGOs write into
// the hub's canonical values and check what can be checked: identifiers with checksums (СНИЛС, INN,
// OGRN, OGRNIP), amounts, and the text the city's lists are written in. Each function takes a
// string and returns the normalized value or an error a person can act on; none guesses.
package normalize
