package tlsrecord

// recordLen returns the length of the record buf starts with once its header is
// whole (0 before), or the alert its header earns. Only application_data records
// exist once the handshake is over; legacy_record_version is checked as
// crypto/tls checks it.
func recordLen(buf []byte) (int, *LocalError) {
	if len(buf) < headerLen {
		return 0, nil
	}
	if buf[0] != typeAppData {
		return 0, fail(AlertUnexpectedMessage, "record of outer type %d after the handshake", buf[0])
	}
	if buf[1] != 3 || buf[2] != 3 {
		return 0, fail(AlertProtocolVersion, "record version %#02x%02x", buf[1], buf[2])
	}
	n := int(buf[3])<<8 | int(buf[4])
	if n > maxCiphertext {
		return 0, fail(AlertRecordOverflow, "record of %d bytes, over %d", n, maxCiphertext)
	}
	return headerLen + n, nil
}

// open opens rec, one whole record, in place under h and returns its inner type
// and content (which alias rec).
func (h *half) open(rec []byte) (byte, []byte, *LocalError) {
	a, err := h.cipher()
	if err != nil {
		return 0, nil, fail(AlertInternalError, "%v", err)
	}
	nonce, err := h.nextNonce()
	if err != nil {
		return 0, nil, fail(AlertInternalError, "%v", err)
	}
	body := rec[headerLen:]
	pt, err := a.Open(body[:0], nonce, body, rec[:headerLen])
	if err != nil {
		return 0, nil, fail(AlertBadRecordMAC, "record %d does not authenticate", h.seq-1)
	}
	if len(pt) > maxPlaintext+1 {
		return 0, nil, fail(AlertRecordOverflow, "plaintext of %d bytes, over %d", len(pt)-1, maxPlaintext)
	}
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i-- // padding
	}
	if i < 0 {
		return 0, nil, fail(AlertUnexpectedMessage, "record without an inner content type")
	}
	return pt[i], pt[:i], nil
}
