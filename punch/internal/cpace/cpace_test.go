package cpace

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/gtank/ristretto255"
)

// The vectors below are the CPACE-RISTR255-SHA512 test vectors of
// draft-irtf-cfrg-cpace-21, appendix B.3 (B.3.1 to B.3.6, B.3.10, B.3.11),
// and the string-utility vectors of appendix A.1 and A.3 of the same draft.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

var (
	tcPRS = []byte("Password")
	tcCI  = []byte("\x0bA_initiator\x0bB_responder")
	tcSID = "7e4b4791d6a8ef019b936c79fb7f2c57"
	tcADa = []byte("ADa")
	tcADb = []byte("ADb")

	tcGenString = `11435061636552697374726574746f3235350850617373776f726464
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000000000000000000000000000
         00000000000000000000000000000000180b415f696e69746961746f
         720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
         2c57`
	tcGenHash = `da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
         b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
         05f90851a657ee27`
	tcG  = "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"
	tcya = "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08"
	tcYa = "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157"
	tcyb = "d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d"
	tcYb = "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258"
	tcK  = "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f"

	tcTranscriptIR = `20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
         ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
         8232b5ebe63324e2d9e7433f725803414462`
	tcISKIR = `b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
         ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
         3fa2068af7900447`
	tcTranscriptOC = `6f6320d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f
         8d0eec482b915703414461203ea7e0b19560d7c0b0f5734f63b95528
         6dfa8232b5ebe63324e2d9e7433f725803414462`
	tcISKOC = `544199d71f62f8d9a1fee55727e24fe4a45844593c2b6013c4fa3969
         d0e5debb2244675c0b43397cbb68d342b01fc0f98fc961469a25134d
         e9f0f813c1a57476`
)

func TestStringUtilities(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "00"},
		{[]byte("1234"), "0431323334"},
		{seq(127), "7f" + hex.EncodeToString(seq(127))},
		{seq(128), "8001" + hex.EncodeToString(seq(128))},
	} {
		if got := hex.EncodeToString(prependLen(nil, tc.in)); got != tc.want {
			t.Errorf("prepend_len(%d bytes) = %s, want %s", len(tc.in), got, tc.want)
		}
	}
	if got := hex.EncodeToString(lvCat([]byte("1234"), []byte("5"), nil, []byte("678"))); got != "043132333401350003363738" {
		t.Errorf("lv_cat = %s", got)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"\x00", "\x00\x00", false}, {"\x01", "\x00\x00", true}, {"\x00\x00", "\x00", true},
		{"\x00\x00", "\x01", false}, {"\x00\x01", "\x01", false}, {"ABCD", "BCD", false},
	} {
		if got := lexLarger([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("lexiographically_larger(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	if got := hex.EncodeToString(oCat([]byte("ABCD"), []byte("BCD"))); got != "6f6342434441424344" {
		t.Errorf("o_cat(ABCD, BCD) = %s", got)
	}
	if got := hex.EncodeToString(oCat([]byte("BCD"), []byte("ABCDE"))); got != "6f634243444142434445" {
		t.Errorf("o_cat(BCD, ABCDE) = %s", got)
	}
}

func TestGeneratorVector(t *testing.T) {
	sid := unhex(t, tcSID)
	gs := generatorString([]byte(DSI), tcPRS, tcCI, sid, hashBlockSize)
	if !bytes.Equal(gs, unhex(t, tcGenString)) {
		t.Fatalf("generator_string = %x", gs)
	}
	if h := sha512.Sum512(gs); !bytes.Equal(h[:], unhex(t, tcGenHash)) {
		t.Fatalf("hash of generator_string = %x", h)
	}
	g := calculateGenerator(tcPRS, tcCI, sid)
	if got := hex.EncodeToString(g.Encode(nil)); got != tcG {
		t.Fatalf("generator g = %s, want %s", got, tcG)
	}
}

// TestProtocolVectors runs both parties with the draft's scalars and checks
// Ya, Yb, K and ISK in the initiator-responder and the symmetric setting.
func TestProtocolVectors(t *testing.T) {
	sid := unhex(t, tcSID)
	for _, tc := range []struct {
		name         string
		roleA, roleB Role
		transcript   string
		isk          string
	}{
		{"initiator-responder", Initiator, Responder, tcTranscriptIR, tcISKIR},
		{"parallel", Symmetric, Symmetric, tcTranscriptOC, tcISKOC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := newParty(tc.roleA, tcPRS, tcCI, sid, tcADa, bytes.NewReader(unhex(t, tcya)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := newParty(tc.roleB, tcPRS, tcCI, sid, tcADb, bytes.NewReader(unhex(t, tcyb)))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(a.Share()); got != tcYa {
				t.Fatalf("Ya = %s, want %s", got, tcYa)
			}
			if got := hex.EncodeToString(b.Share()); got != tcYb {
				t.Fatalf("Yb = %s, want %s", got, tcYb)
			}
			k, ok := scalarMultVfy(a.y, b.Share())
			if !ok || hex.EncodeToString(k) != tcK {
				t.Fatalf("K = %x (ok %v), want %s", k, ok, tcK)
			}
			var tr []byte
			if tc.roleA == Initiator {
				tr = transcriptIR(a.Share(), tcADa, b.Share(), tcADb)
			} else {
				tr = transcriptOC(a.Share(), tcADa, b.Share(), tcADb)
			}
			if !bytes.Equal(tr, unhex(t, tc.transcript)) {
				t.Fatalf("transcript = %x", tr)
			}
			iskA, err := a.Finish(b.Share(), tcADb)
			if err != nil {
				t.Fatal(err)
			}
			iskB, err := b.Finish(a.Share(), tcADa)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, tc.isk)
			if !bytes.Equal(iskA, want) || !bytes.Equal(iskB, want) {
				t.Fatalf("ISK A = %x\nISK B = %x\nwant    %x", iskA, iskB, want)
			}
		})
	}
}

func TestScalarMultVectors(t *testing.T) {
	s := ristretto255.NewScalar()
	if err := s.Decode(unhex(t, "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05")); err != nil {
		t.Fatal(err)
	}
	got, ok := scalarMultVfy(s, unhex(t, "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"))
	if !ok || hex.EncodeToString(got) != "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e" {
		t.Fatalf("scalar_mult_vfy(s, X) = %x, %v", got, ok)
	}
	// B.3.11: a non-decodable encoding and the neutral element both abort.
	for _, bad := range [][]byte{
		unhex(t, "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
		identity,
		make([]byte, 31),
		nil,
	} {
		if _, ok := scalarMultVfy(s, bad); ok {
			t.Errorf("scalar_mult_vfy(s, %x) did not abort", bad)
		}
	}
}

// TestAbortOnInvalidShare introduces the invalid points into a protocol
// run, as section 9 of the draft asks: Finish must fail for both.
func TestAbortOnInvalidShare(t *testing.T) {
	for _, bad := range [][]byte{
		unhex(t, "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
		identity,
	} {
		for _, role := range []Role{Initiator, Responder, Symmetric} {
			p, err := New(role, tcPRS, tcCI, []byte("sid"), nil)
			if err != nil {
				t.Fatal(err)
			}
			k, err := p.Finish(bad, nil)
			if !errors.Is(err, ErrInvalidShare) || k != nil {
				t.Errorf("%v: Finish(%x) = %x, %v; want ErrInvalidShare", role, bad, k, err)
			}
		}
	}
}

func TestRandomRuns(t *testing.T) {
	run := func(prsA, prsB string) (ka, kb []byte) {
		a, err := New(Initiator, []byte(prsA), tcCI, []byte("session"), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Responder, []byte(prsB), tcCI, []byte("session"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ka, err = a.Finish(b.Share(), nil); err != nil {
			t.Fatal(err)
		}
		if kb, err = b.Finish(a.Share(), nil); err != nil {
			t.Fatal(err)
		}
		return ka, kb
	}
	if ka, kb := run("amber-orbit-lamp", "amber-orbit-lamp"); !bytes.Equal(ka, kb) || len(ka) != ISKSize {
		t.Fatalf("same password, different keys: %x / %x", ka, kb)
	}
	if ka, kb := run("amber-orbit-lamp", "amber-orbit-lump"); bytes.Equal(ka, kb) {
		t.Fatal("different passwords gave the same key")
	}
	p, _ := New(Initiator, tcPRS, tcCI, nil, nil)
	q, _ := New(Responder, tcPRS, tcCI, nil, nil)
	if _, err := p.Finish(q.Share(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(q.Share(), nil); err == nil {
		t.Fatal("a party finished twice")
	}
}
