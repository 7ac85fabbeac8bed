package eligibility

import (
	"strconv"

	"socialhub/internal/rawjson"
)

// parseFacts reads the facts from a resident document the way json.Unmarshal does, without its
// reflection: Apply decides every resident it is handed. It reports false, having perhaps filled
// part of f, for anything outside the plain shape the pipeline writes (escaped or upper-case keys,
// escaped strings, a value of the wrong type, invalid JSON); ParseFacts then leaves it to
// encoding/json, which gives the same facts or the error.
func (f *Facts) parseFast(doc []byte) bool {
	p := factsParser{b: doc}
	p.space()
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "address":
			return p.object(func(key []byte) bool {
				switch string(key) {
				case "district":
					return p.str(&f.Address.District)
				case "okrug":
					return p.str(&f.Address.Okrug)
				}
				return p.skip()
			})
		case "household":
			return p.object(func(key []byte) bool {
				switch string(key) {
				case "members":
					return p.integer(&f.Household.Members)
				case "children_under_18":
					return p.integer(&f.Household.ChildrenUnder18)
				case "children_with_disabilities":
					return p.integer(&f.Household.ChildrenWithDisabilities)
				}
				return p.skip()
			})
		case "registered_since":
			return p.str(&f.RegisteredSince)
		case "birth_date":
			return p.str(&f.BirthDate)
		case "disability_group":
			return p.str(&f.DisabilityGroup)
		case "pensioner":
			return p.boolean(&f.Pensioner)
		case "low_income":
			return p.boolean(&f.LowIncome)
		case "large_family":
			return p.boolean(&f.LargeFamily)
		}
		return p.skip()
	})
	p.space()
	return ok && p.i == len(p.b)
}

// factsParser walks a JSON document; every method reports false when it meets something it does
// not handle, and leaves the position after what it read otherwise.
type factsParser struct {
	b []byte
	i int
}

func (p *factsParser) space() { p.i = rawjson.SkipSpace(p.b, p.i) }

// null consumes a null, which json.Unmarshal leaves the field alone for.
func (p *factsParser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// object reads an object (or null), calling member with each key, positioned at its value. Keys
// must be plain lower-case ASCII: encoding/json matches keys case-insensitively, so any other key
// could name a field.
func (p *factsParser) object(member func(key []byte) bool) bool {
	if p.null() {
		return true
	}
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		start := p.i + 1
		end := start
		for end < len(p.b) && p.b[end] != '"' {
			c := p.b[end]
			if c == '\\' || c < 0x20 || c >= 0x80 || ('A' <= c && c <= 'Z') {
				return false
			}
			end++
		}
		if end >= len(p.b) {
			return false
		}
		p.i = end + 1
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.space()
		if !member(p.b[start:end]) {
			return false
		}
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string without escapes (or null) into s.
func (p *factsParser) str(s *string) bool {
	if p.null() {
		return true
	}
	raw, ok := p.plainString()
	if ok {
		*s = string(raw)
	}
	return ok
}

// plainString reads a string of valid UTF-8 without escapes (its bytes are its value).
func (p *factsParser) plainString() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	end, plain, ok := rawjson.String(p.b, p.i)
	if !ok || !plain {
		return nil, false // escapes or invalid UTF-8: encoding/json decides
	}
	raw := p.b[p.i+1 : end-1]
	p.i = end
	return raw, true
}

// integer reads a whole number that fits an int64 (or null) into n.
func (p *factsParser) integer(n *int64) bool {
	if p.null() {
		return true
	}
	if p.i >= len(p.b) || (p.b[p.i] != '-' && (p.b[p.i] < '0' || p.b[p.i] > '9')) {
		return false
	}
	end, ok := rawjson.Skip(p.b, p.i)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(p.b[p.i:end]), 10, 64)
	if err != nil {
		return false // a fraction, an exponent or too large: encoding/json says why
	}
	*n, p.i = v, end
	return true
}

// boolean reads true or false (or null) into v.
func (p *factsParser) boolean(v *bool) bool {
	switch {
	case p.null():
		return true
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		*v, p.i = true, p.i+4
		return true
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		*v, p.i = false, p.i+5
		return true
	}
	return false
}

// skip reads a value of a member no rule reads (json.Unmarshal checks it and ignores it).
func (p *factsParser) skip() bool {
	end, ok := rawjson.Skip(p.b, p.i)
	p.i = end
	return ok
}
