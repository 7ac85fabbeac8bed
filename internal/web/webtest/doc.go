// Package webtest holds the browser tests of the front ends: headless Chromium, driven over the
// DevTools protocol, against a real hub (PostgreSQL, Kafka, demo data) started by the test. It is
// a package of its own because it imports internal/hub, which serves internal/web.
package webtest
