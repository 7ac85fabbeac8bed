package eligibility

import "time"

// DecideForTest evaluates a rule through the activation Apply and Eligibility use.
func DecideForTest(r *Rule, f *Facts, today time.Time) bool {
	return r.eval(&activation{f: f, today: today})
}
