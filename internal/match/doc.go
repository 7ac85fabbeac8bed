// Package match decides whether two source records describe the same real organization, service
// point (location) or service: the features a record offers (identifiers, phones, e-mails, web
// domains, names, addresses, coordinates), the blocking keys that find its candidates without
// scanning the catalog, and the score of a pair with the features that made it. It holds no state
// and touches no database: the catalog calls it inside Apply and keeps the clusters.
package match
