// Package review serves the review queue of entity resolution over HTTP: the pairs whose match
// score fell between the thresholds, each with both sides, the score and the features that
// agreed, and the reviewers' decisions (merge, split, dismiss), which the catalog applies and
// remembers and whose changes go to the outbox in the same transaction.
package review
