package seclink

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestSecretText(t *testing.T) {
	s := mustSecret(t)
	text := s.String()
	if !regexp.MustCompile(`^tps1-[a-z2-7]{58}$`).MatchString(text) {
		t.Fatalf("secret text %q", text)
	}
	for _, in := range []string{text, strings.ToUpper(text), "  " + text + "\n"} {
		got, err := ParseSecret(in)
		if err != nil || got != s {
			t.Fatalf("ParseSecret(%q) = %v", in, err)
		}
	}
	if s2 := mustSecret(t); s2 == s || s.IsZero() {
		t.Fatal("two secrets alike, or zero")
	}
	// Every single-character typo is caught.
	body := []byte(text)
	for i := len("tps1-"); i < len(body); i++ {
		orig := body[i]
		body[i] = map[bool]byte{true: 'b', false: 'a'}[orig == 'a']
		if _, err := ParseSecret(string(body)); !errors.Is(err, ErrBadSecret) {
			t.Fatalf("typo at %d accepted: %v", i, err)
		}
		body[i] = orig
	}
	for _, bad := range []string{"", "tps1-", "tps2-" + text[5:], text[:len(text)-1], text + "a", "tps1-0000"} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
}

func TestWordlist(t *testing.T) {
	if len(Wordlist) != 2048 {
		t.Fatalf("%d words, want 2048", len(Wordlist))
	}
	word := regexp.MustCompile(`^[a-z]{3,8}$`)
	seen := map[string]bool{}
	for _, w := range Wordlist {
		if !word.MatchString(w) || seen[w] {
			t.Fatalf("bad or repeated word %q", w)
		}
		seen[w] = true
	}
}

func TestCodeText(t *testing.T) {
	for i := 0; i < 50; i++ {
		c, err := GenerateCode()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[1-9][0-9]{0,2}(-[a-z]{3,8}){3}$`).MatchString(c.String()) {
			t.Fatalf("code %q", c)
		}
		back, err := ParseCode(c.String())
		if err != nil || back.String() != c.String() || back.Name() != c.Name() {
			t.Fatalf("round trip of %q: %v", c, err)
		}
	}
	c := mustCode(t, "  07 Amber_ORBIT.lamp\n")
	if c.String() != "7-amber-orbit-lamp" || c.Name() != "c-7" || string(c.password()) != "amber-orbit-lamp" {
		t.Fatalf("normalized %q name %q", c, c.Name())
	}
	for _, bad := range []string{"", "amber-orbit-lamp", "0-amber-orbit-lamp", "7-amber-orbit", "7-amber-orbit-lamq",
		"1000000-amber-orbit-lamp", "-7-amber-orbit-lamp-x", "7-a-b-c-d-e-f-g-h-i"} {
		if _, err := ParseCode(bad); !errors.Is(err, ErrBadCode) {
			t.Errorf("ParseCode(%q) = %v, want ErrBadCode", bad, err)
		}
	}
	if _, err := ParseCode("7-amber-orbit-lamq"); err == nil || !strings.Contains(err.Error(), `"lamq"`) {
		t.Errorf("typo not named: %v", err)
	}
}

func TestOwnerKey(t *testing.T) {
	s := mustSecret(t)
	k := OwnerKey(s, "laptop")
	if len(k) != ed25519.PrivateKeySize {
		t.Fatalf("owner key of %d bytes", len(k))
	}
	pub := k.Public().(ed25519.PublicKey)
	if !bytes.Equal(OwnerKey(s, "laptop").Public().(ed25519.PublicKey), pub) {
		t.Fatal("owner key not deterministic")
	}
	for name, other := range map[string]ed25519.PrivateKey{
		"other label":  OwnerKey(s, "desktop"),
		"other secret": OwnerKey(mustSecret(t), "laptop"),
		"label prefix": OwnerKey(s, "laptop\x00"),
	} {
		if bytes.Equal(other.Public().(ed25519.PublicKey), pub) {
			t.Errorf("%s: same owner key", name)
		}
	}
	// The owner key is separate from the link identity.
	link := newIdentity(SecretAuth(s, "laptop").kAuth)
	if bytes.Equal(link.pub, pub) {
		t.Fatal("owner key equals the link identity key")
	}
}

// TestCertificateChecks covers what the loopback handshakes cannot easily
// produce: a certificate for the wrong role, the wrong session, or signed
// by another identity.
func TestCertificateChecks(t *testing.T) {
	id := newIdentity(bytes.Repeat([]byte{1}, 32))
	tag := SessionTag{1, 2, 3}
	cert, err := makeCertificate(id, RoleControlled, tag)
	if err != nil {
		t.Fatal(err)
	}
	raw := cert.Certificate
	if err := verifyCertificate(id, RoleControlled, tag, raw); err != nil {
		t.Fatalf("good certificate refused: %v", err)
	}
	for name, err := range map[string]error{
		"wrong role":     verifyCertificate(id, RoleControlling, tag, raw),
		"wrong tag":      verifyCertificate(id, RoleControlled, SessionTag{9}, raw),
		"other identity": verifyCertificate(newIdentity(bytes.Repeat([]byte{2}, 32)), RoleControlled, tag, raw),
		"no cert":        verifyCertificate(id, RoleControlled, tag, nil),
		"two certs":      verifyCertificate(id, RoleControlled, tag, [][]byte{raw[0], raw[0]}),
		"garbage":        verifyCertificate(id, RoleControlled, tag, [][]byte{[]byte("junk")}),
	} {
		if !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: err = %v, want ErrAuthFailed", name, err)
		}
	}
}
