package cpace

// The string utilities of the draft (appendix A.1 and A.3).

// prependLen returns data prefixed with its length in LEB128.
func prependLen(dst, data []byte) []byte {
	n := len(data)
	for {
		if n < 128 {
			dst = append(dst, byte(n))
		} else {
			dst = append(dst, byte(n&0x7f)|0x80)
		}
		n >>= 7
		if n == 0 {
			break
		}
	}
	return append(dst, data...)
}

// lvCat is the draft's length-value concatenation lv_cat(a0, a1, ...).
func lvCat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = prependLen(out, p)
	}
	return out
}

// lexLarger reports whether a > b in lexicographical order (the draft's
// lexiographically_larger).
func lexLarger(a, b []byte) bool {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] > b[i] {
			return true
		} else if a[i] < b[i] {
			return false
		}
	}
	return len(a) > len(b)
}

// oCat is the draft's ordered concatenation: b"oc", then the larger string.
func oCat(a, b []byte) []byte {
	out := []byte("oc")
	if lexLarger(a, b) {
		return append(append(out, a...), b...)
	}
	return append(append(out, b...), a...)
}

// generatorString is the draft's generator_string(DSI, PRS, CI, sid,
// s_in_bytes): the zero padding makes DSI and PRS fill the first hash block.
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := max(0, sInBytes-1-len(prependLen(nil, prs))-len(prependLen(nil, dsi)))
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// transcriptIR is transcript_ir(Ya, ADa, Yb, ADb) for the
// initiator-responder setting.
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// transcriptOC is transcript_oc(Ya, ADa, Yb, ADb) for the symmetric
// (parallel) setting.
func transcriptOC(ya, ada, yb, adb []byte) []byte {
	return oCat(lvCat(ya, ada), lvCat(yb, adb))
}
