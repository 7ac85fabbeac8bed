package validate

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"socialhub/internal/event"
	"socialhub/internal/normalize"
)

// Fields counted in socialhub_normalized_fields_total: one label per kind of value, not per path,
// so the metric's cardinality stays fixed.
const (
	fieldName             = "name"
	fieldPhone            = "phone"
	fieldEmail            = "email"
	fieldWebsite          = "website"
	fieldSchedule         = "schedule"
	fieldScheduleUnparsed = "schedule_unparsed" // kept as description only: the text was not understood
	fieldDistrict         = "district"
	fieldOkrug            = "okrug"
	numFields             = 8
)

var fieldLabels = [numFields]string{fieldName, fieldPhone, fieldEmail, fieldWebsite, fieldSchedule, fieldScheduleUnparsed, fieldDistrict, fieldOkrug}

const (
	iName = iota
	iPhone
	iEmail
	iWebsite
	iSchedule
	iScheduleUnparsed
	iDistrict
	iOkrug
)

// moscowUTCOffset is the schedules' timezone: HSDS reads times without one as UTC.
const moscowUTCOffset = 3

// normalizer rewrites one service document in place and collects what it could not read.
type normalizer struct {
	reasons []event.Reason
	counts  Counts
}

// normalizeService normalizes a service record document (HSDS service with its organization and
// service_at_locations nested), decoded with UseNumber, in place, and collects the values it could
// not normalize as reasons.
func normalizeService(doc map[string]any, n *normalizer) {
	n.name(doc, "")
	n.email(doc, "email", "")
	n.email(doc, "assurer_email", "")
	n.website(doc, "url", "")
	n.phones(doc, "")
	n.schedules(doc, "")
	if org, ok := doc["organization"].(map[string]any); ok {
		n.name(org, "organization.")
		n.email(org, "email", "organization.")
		n.website(org, "website", "organization.")
		n.website(org, "url", "organization.")
		n.phones(org, "organization.")
	}
	sals, _ := doc["service_at_locations"].([]any)
	for i, x := range sals {
		sal, ok := x.(map[string]any)
		if !ok {
			continue
		}
		p := "service_at_locations." + strconv.Itoa(i) + "."
		n.phones(sal, p)
		n.schedules(sal, p)
		loc, ok := sal["location"].(map[string]any)
		if !ok {
			continue
		}
		p += "location."
		n.name(loc, p)
		n.phones(loc, p)
		n.schedules(loc, p)
		addrs, _ := loc["addresses"].([]any)
		for j, y := range addrs {
			if a, ok := y.(map[string]any); ok {
				n.address(a, p+"addresses."+strconv.Itoa(j)+".")
			}
		}
	}
}

func (n *normalizer) reason(field string, err error) {
	n.reasons = append(n.reasons, event.Reason{Field: field, Message: err.Error()})
}

// set replaces obj[key] when the value changed and counts it.
func (n *normalizer) set(obj map[string]any, key string, old, v string, counter int) {
	if v == old {
		return
	}
	obj[key] = v
	n.counts[counter]++
}

func (n *normalizer) name(obj map[string]any, prefix string) {
	if s, ok := obj["name"].(string); ok {
		n.set(obj, "name", s, normalize.Name(s), iName)
	}
}

func (n *normalizer) email(obj map[string]any, key, prefix string) {
	s, ok := obj[key].(string)
	if !ok {
		return
	}
	v, err := normalize.Email(s)
	if err != nil {
		n.reason(prefix+key, err)
		return
	}
	n.set(obj, key, s, v, iEmail)
}

func (n *normalizer) website(obj map[string]any, key, prefix string) {
	s, ok := obj[key].(string)
	if !ok {
		return
	}
	v, err := normalize.Website(s)
	if err != nil {
		n.reason(prefix+key, err)
		return
	}
	n.set(obj, key, s, v, iWebsite)
}

// phones normalizes obj.phones: each number to E.164 with its extension; a field holding several
// numbers becomes several phones, the first keeping the id and the others «<id>/<n>».
func (n *normalizer) phones(obj map[string]any, prefix string) {
	list, ok := obj["phones"].([]any)
	if !ok {
		return
	}
	var out []any // nil until a field splits
	for i, x := range list {
		ph, ok := x.(map[string]any)
		s, isStr := ph["number"].(string)
		if !ok || !isStr {
			if out != nil {
				out = append(out, x)
			}
			continue
		}
		field := prefix + "phones." + strconv.Itoa(i) + ".number"
		got, err := normalize.Phones(s)
		if err != nil {
			n.reason(field, err)
			if out != nil {
				out = append(out, x)
			}
			continue
		}
		for k, p := range got {
			target := ph
			if k > 0 {
				target = make(map[string]any, len(ph))
				for key, v := range ph {
					if _, str := v.(string); str && key != "description" && key != "type" {
						target[key] = v
					}
				}
				id, _ := ph["id"].(string)
				target["id"] = id + "/" + strconv.Itoa(k)
			}
			before := n.counts[iPhone]
			n.set(target, "number", s, p.Number, iPhone)
			if k > 0 && n.counts[iPhone] == before {
				n.counts[iPhone]++
			}
			if p.Extension != "" {
				ext, _ := normalize.ExtensionNumber(p.Extension)
				if old, has := target["extension"]; has && k == 0 {
					if num, ok := old.(json.Number); !ok || num.String() != strconv.Itoa(ext) {
						n.reason(prefix+"phones."+strconv.Itoa(i)+".extension", errExtensionConflict(old, p.Extension))
					}
				} else {
					target["extension"] = json.Number(strconv.Itoa(ext))
				}
			}
			if p.Type != "" {
				if _, has := target["type"]; !has {
					target["type"] = p.Type
				}
			}
			if p.Note != "" {
				if _, has := target["description"]; !has {
					target["description"] = p.Note
				}
			}
			if len(got) > 1 && out == nil {
				out = append(make([]any, 0, len(list)+len(got)-1), list[:i]...)
			}
			if out != nil {
				out = append(out, target)
			}
		}
	}
	if out != nil {
		obj["phones"] = out
	}
}

func errExtensionConflict(old any, ext string) error {
	return &conflictError{"the number's extension " + strconv.Quote(ext) + " differs from the extension field " + jsonText(old)}
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

// schedules parses the schedules that hold only a description («пн-пт 9:00–18:00, обед 13-14»)
// into structured weekly schedules, one per interval, each keeping the description. Text it does
// not understand stays a description-only schedule, which HSDS allows: it is counted, not
// rejected, because the hours are then still shown as the source wrote them.
func (n *normalizer) schedules(obj map[string]any, prefix string) {
	list, ok := obj["schedules"].([]any)
	if !ok {
		return
	}
	var out []any
	for i, x := range list {
		sc, ok := x.(map[string]any)
		desc, isStr := sc["description"].(string)
		if !ok || !isStr || hasAny(sc, "opens_at", "closes_at", "byday", "freq", "bymonthday", "dtstart") {
			if out != nil {
				out = append(out, x)
			}
			continue
		}
		intervals, err := normalize.OpeningHours(desc)
		if err != nil {
			n.counts[iScheduleUnparsed]++
			if out == nil {
				out = append(make([]any, 0, len(list)), list[:i]...)
			}
			out = append(out, x)
			continue
		}
		if out == nil {
			out = append(make([]any, 0, len(list)+len(intervals)-1), list[:i]...)
		}
		id, _ := sc["id"].(string)
		for k, iv := range intervals {
			target := sc
			if k > 0 {
				target = make(map[string]any, len(sc)+5)
				for key, v := range sc {
					if _, str := v.(string); str {
						target[key] = v
					}
				}
				target["id"] = id + "/" + strconv.Itoa(k)
			}
			target["freq"] = normalize.Freq
			target["byday"] = iv.ByDay
			target["opens_at"] = iv.OpensAt
			target["closes_at"] = iv.ClosesAt
			if _, has := target["timezone"]; !has {
				target["timezone"] = json.Number(strconv.Itoa(moscowUTCOffset))
			}
			out = append(out, target)
		}
		n.counts[iSchedule]++
	}
	if out != nil {
		obj["schedules"] = out
	}
}

func hasAny(obj map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := obj[k]; ok {
			return true
		}
	}
	return false
}

// address matches district and okrug to the reference list; a known district fills a missing okrug
// (the reference says which okrug holds it), and a district in another okrug than the one written
// is a reason, since one of the two is wrong and the hub cannot tell which.
func (n *normalizer) address(a map[string]any, prefix string) {
	var place normalize.Place
	if s, ok := a["district"].(string); ok && strings.TrimSpace(s) != "" {
		p, err := normalize.District(s)
		if err != nil {
			n.reason(prefix+"district", err)
		} else {
			place = p
			n.set(a, "district", s, p.District, iDistrict)
		}
	}
	s, ok := a["okrug"].(string)
	switch {
	case ok && strings.TrimSpace(s) != "":
		o, err := normalize.Okrug(s)
		if err != nil {
			n.reason(prefix+"okrug", err)
			return
		}
		if place.Okrug != "" && place.Okrug != o {
			n.reason(prefix+"okrug", &conflictError{"district " + place.District + " is in " + place.Okrug + ", not " + o})
			return
		}
		n.set(a, "okrug", s, o, iOkrug)
	case place.Okrug != "":
		n.set(a, "okrug", s, place.Okrug, iOkrug)
	}
}

// mergeReasons sorts reasons by field and joins the messages of one field, so a value the
// normalizer refused and the schema check then flagged is one reason with both messages.
func mergeReasons(rs []event.Reason) []event.Reason {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Field < rs[j].Field })
	out := rs[:0]
	for _, r := range rs {
		if k := len(out); k > 0 && out[k-1].Field == r.Field {
			if !strings.Contains(out[k-1].Message, r.Message) {
				out[k-1].Message += "; " + r.Message
			}
			continue
		}
		out = append(out, r)
	}
	return out
}
