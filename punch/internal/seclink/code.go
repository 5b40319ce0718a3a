package seclink

import (
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// A one-time code such as "7-amber-orbit-lamp": a nameplate number, which
// the rendezvous server sees as the name "c-7", and words that are the
// CPace password and never leave the two peers.
//
// Entropy: each word is drawn uniformly from a list of 2048, so the default
// three words carry 33 bits. The nameplate is public and adds nothing. That
// is enough because the words are only ever tested online through CPace:
// one guess per attempt, and the listener retires a code after 3 failed
// attempts, so an attacker wins with probability 3 / 2^33 (about 1 in 2.9
// billion). Never hash a code into something the server sees: that would
// let it try all 2^33 words offline.

//go:embed words.txt
var wordsTxt string

// Wordlist is the code word list: 2048 plain lower-case English words of
// 3 to 8 letters.
var Wordlist = strings.Fields(wordsTxt)

var wordIndex = func() map[string]bool {
	m := make(map[string]bool, len(Wordlist))
	for _, w := range Wordlist {
		m[w] = true
	}
	return m
}()

const (
	// CodeWords is the number of words GenerateCode picks.
	CodeWords = 3
	// CodeNamePrefix starts the rendezvous name of a code's nameplate.
	CodeNamePrefix = "c-"

	minCodeWords  = 3
	maxCodeWords  = 8
	maxNameplate  = 999999
	nameplateSpan = 999 // GenerateCode picks 1..999: short to type
)

// ErrBadCode is returned by ParseCode for text that is not a code.
var ErrBadCode = errors.New("not a valid one-time code")

// Code is a parsed one-time code.
type Code struct {
	nameplate uint32
	words     []string
}

// GenerateCode returns a new code with a random nameplate (1-999) and
// CodeWords random words.
func GenerateCode() (Code, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(nameplateSpan))
	if err != nil {
		return Code{}, fmt.Errorf("generating a code: %w", err)
	}
	c := Code{nameplate: uint32(n.Int64()) + 1}
	for range CodeWords {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(Wordlist))))
		if err != nil {
			return Code{}, fmt.Errorf("generating a code: %w", err)
		}
		c.words = append(c.words, Wordlist[i.Int64()])
	}
	return c, nil
}

// ParseCode reads a code typed by a person: case does not matter, and
// words may be separated by '-', spaces, '_', '.' or ','. The nameplate
// comes first. Every word must be on the list, so a typo fails here with
// the word named, instead of costing one of the code's attempts.
func ParseCode(text string) (Code, error) {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 0 {
		return Code{}, fmt.Errorf("%w: empty", ErrBadCode)
	}
	n, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil || n == 0 || n > maxNameplate {
		return Code{}, fmt.Errorf("%w: it must start with a number from 1 to %d, like 7-amber-orbit-lamp", ErrBadCode, maxNameplate)
	}
	words := fields[1:]
	if len(words) < minCodeWords || len(words) > maxCodeWords {
		return Code{}, fmt.Errorf("%w: it needs %d to %d words after the number, has %d", ErrBadCode, minCodeWords, maxCodeWords, len(words))
	}
	for _, w := range words {
		if !wordIndex[w] {
			return Code{}, fmt.Errorf("%w: %q is not a code word (typo?)", ErrBadCode, w)
		}
	}
	return Code{nameplate: uint32(n), words: append([]string(nil), words...)}, nil
}

// IsZero reports whether c is the zero value (no code).
func (c Code) IsZero() bool { return c.nameplate == 0 }

// String returns the normalized form, e.g. "7-amber-orbit-lamp".
func (c Code) String() string {
	return strconv.FormatUint(uint64(c.nameplate), 10) + "-" + strings.Join(c.words, "-")
}

// Name is what the rendezvous server sees: "c-" and the nameplate.
func (c Code) Name() string {
	return CodeNamePrefix + strconv.FormatUint(uint64(c.nameplate), 10)
}

// password is the CPace PRS: the normalized words only.
func (c Code) password() []byte { return []byte(strings.Join(c.words, "-")) }
