import BlindAITensor

/// Block-quantized values as onnxruntime's MatMulNBits layout stores them (also GatherBlockQuantized's): `8 / bits`
/// values per byte, the first in the lowest bits; each block of `blockSize` consecutive values has one scale and one
/// zero point; zero points are packed the same way (one row of blocks after another), and default to 2^(bits - 1).
package enum BlockQuantized {
    /// The `i`-th packed value of `bytes` (bits 2, 4 or 8).
    @inlinable @inline(__always)
    package static func value(_ bytes: UnsafePointer<UInt8>, _ i: Int, bits: Int) -> Int {
        switch bits {
        case 8: return Int(bytes[i])
        case 4: return (Int(bytes[i &>> 1]) &>> ((i & 1) &<< 2)) & 0xF
        default: return (Int(bytes[i &>> 2]) &>> ((i & 3) &<< 1)) & 0x3
        }
    }

    /// Bytes holding `count` packed values.
    @inlinable
    package static func packedBytes(_ count: Int, bits: Int) -> Int {
        let perByte = 8 / bits
        return (count + perByte - 1) / perByte
    }

    /// The zero point of block `block` of row `row` from packed uint8 zero points with `blocksPerRow` blocks a row
    /// (each row starting on a byte), or the default 2^(bits - 1) when there are none.
    @inlinable @inline(__always)
    package static func zeroPoint(_ zeroPoints: UnsafePointer<UInt8>?, row: Int, block: Int, blocksPerRow: Int, bits: Int) -> Float {
        guard let zeroPoints else { return Float(1 << (bits - 1)) }
        return Float(value(zeroPoints + row * packedBytes(blocksPerRow, bits: bits), block, bits: bits))
    }
}
