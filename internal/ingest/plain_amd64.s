//go:build !purego

#include "textflag.h"

// SPECIAL16 sets bit k of BX when byte k of X0 is special: 0x20 > it as a signed
// byte (X1 holds 0x20s), or it is '"' (X2) or '\\' (X3). It clobbers X0, X4, X5.
#define SPECIAL16 \
	MOVO     X1, X4; \
	PCMPGTB  X0, X4; \
	MOVO     X0, X5; \
	PCMPEQB  X2, X5; \
	PCMPEQB  X3, X0; \
	POR      X5, X4; \
	POR      X0, X4; \
	PMOVMSKB X4, BX

// func plainRunSSE2(p []byte, i int) int
//
// A byte is special when it is '"' or '\\', or below 0x20 as a signed byte: the
// control characters and, negative, every byte from 0x80 on. Requires
// 0 <= i <= len(p) and len(p) >= 16.
TEXT ·plainRunSSE2(SB), NOSPLIT, $0-40
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), DX
	MOVQ i+24(FP), AX
	MOVQ $0x2020202020202020, R8
	MOVQ R8, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x2222222222222222, R8
	MOVQ R8, X2
	PUNPCKLQDQ X2, X2
	MOVQ $0x5c5c5c5c5c5c5c5c, R8
	MOVQ R8, X3
	PUNPCKLQDQ X3, X3

loop:
	LEAQ 16(AX), CX
	CMPQ CX, DX
	JHI  last
	MOVOU (SI)(AX*1), X0
	SPECIAL16
	TESTL BX, BX
	JNZ  found
	MOVQ CX, AX
	JMP  loop

last:
	// Fewer than 16 bytes from AX on: the 16 that end p, their mask shifted
	// down by the bytes before AX (16 - (len(p) - AX) of them).
	CMPQ AX, DX
	JAE  none
	MOVOU -16(SI)(DX*1), X0
	SPECIAL16
	LEAQ 16(AX), CX
	SUBQ DX, CX
	SHRL CX, BX
	TESTL BX, BX
	JZ   none

found:
	BSFL BX, BX
	ADDQ BX, AX
	MOVQ AX, ret+32(FP)
	RET

none:
	MOVQ DX, ret+32(FP)
	RET
