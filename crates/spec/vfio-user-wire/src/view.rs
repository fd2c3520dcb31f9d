//! Fixed-layout views over byte buffers.
//!
//! Every vfio-user structure is a run of host-endian integers at fixed offsets.
//! `view!` declares one zero-copy view type per structure in the style of
//! smoltcp's `wire` module: `new_unchecked`, `new_checked` (length check),
//! `into_inner`, one getter per field and, for mutable buffers, one setter.

/// A primitive that can be read from / written to a byte slice in host order.
pub(crate) trait Prim: Copy {
    const SIZE: usize;
    fn get(bytes: &[u8]) -> Self;
    fn put(self, bytes: &mut [u8]);
}

macro_rules! prim {
    ($($t:ty),*) => {$(
        impl Prim for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline]
            fn get(bytes: &[u8]) -> Self {
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_ne_bytes(raw)
            }
            #[inline]
            fn put(self, bytes: &mut [u8]) {
                bytes[..Self::SIZE].copy_from_slice(&self.to_ne_bytes());
            }
        }
    )*};
}
prim!(u16, u32, u64);

/// Read a field at `off`; the caller (a checked view) guarantees the length.
#[inline]
pub(crate) fn get<P: Prim>(buf: &[u8], off: usize) -> P {
    P::get(&buf[off..off + P::SIZE])
}

/// Write a field at `off`; the caller (a checked view) guarantees the length.
#[inline]
pub(crate) fn put<P: Prim>(buf: &mut [u8], off: usize, value: P) {
    value.put(&mut buf[off..off + P::SIZE]);
}

/// Declare a view type: `view!(Name, LEN, { getter / setter: type @ offset, ... })`.
macro_rules! view {
    ($(#[$meta:meta])* $name:ident, $len:expr, { $($get:ident / $set:ident : $ty:ident @ $off:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Size of the fixed part of the structure, in bytes.
            pub const LEN: usize = $len;

            /// Wrap a buffer without checking its length; accessors may panic
            /// on a short buffer. Prefer [`Self::new_checked`].
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wrap a buffer, checking that the fixed part fits.
            pub fn new_checked(buffer: T) -> $crate::Result<Self> {
                let have = buffer.as_ref().len();
                if have < Self::LEN {
                    return Err($crate::Error::Truncated { need: Self::LEN, have });
                }
                Ok(Self { buffer })
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// Bytes following the fixed part (variable data, capabilities).
            pub fn tail(&self) -> &[u8] {
                &self.buffer.as_ref()[Self::LEN..]
            }

            $(
                #[doc = concat!("The `", stringify!($get), "` field.")]
                #[inline]
                pub fn $get(&self) -> $ty {
                    $crate::view::get::<$ty>(self.buffer.as_ref(), $off)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $(
                #[doc = concat!("Set the `", stringify!($get), "` field.")]
                #[inline]
                pub fn $set(&mut self, value: $ty) {
                    $crate::view::put::<$ty>(self.buffer.as_mut(), $off, value)
                }
            )*

            /// Mutable bytes following the fixed part.
            pub fn tail_mut(&mut self) -> &mut [u8] {
                &mut self.buffer.as_mut()[Self::LEN..]
            }
        }
    };
}
pub(crate) use view;
