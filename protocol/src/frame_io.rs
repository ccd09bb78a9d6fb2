//! Async reading and writing of [`crate::frame`] frames on any byte
//! stream (a QUIC stream in production, an in-memory pipe in tests), shared
//! by the API server's and the node's ends of the stream tunnel.

use crate::frame::{self, FrameError, HEADER_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Writes one frame and flushes it.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin + ?Sized,
    T: Serialize,
{
    let bytes = frame::encode(msg)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream before its header.
pub async fn read_frame<R, T>(r: &mut R) -> Result<Option<T>, WireError>
where
    R: AsyncRead + Unpin + ?Sized,
    T: DeserializeOwned,
{
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        got += n;
    }
    let len = frame::body_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(frame::decode(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_cross_a_pipe_and_eof_is_none() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, &("hello".to_string(), 7u32))
            .await
            .unwrap();
        drop(a);
        let got: Option<(String, u32)> = read_frame(&mut b).await.unwrap();
        assert_eq!(got, Some(("hello".into(), 7)));
        let end: Option<(String, u32)> = read_frame(&mut b).await.unwrap();
        assert_eq!(end, None);
    }
}
