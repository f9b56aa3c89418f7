//! The `message` resource: the guest's window onto the host's parsed message.

use crate::message::{Address, Field, MatchError, ParsedMessage};
use crate::sandbox::bindings::wasmail::plugin::message::{Host, HostMessage};
use crate::sandbox::bindings::{WitAddress, WitAttachment, WitField};
use crate::sandbox::patterns::Lookup;
use crate::sandbox::state::{HostExhausted, SandboxState};
use std::sync::Arc;
use wasmtime::component::Resource;

/// Fuel for compiling a `matches` pattern: about what compiling costs here (tens of microseconds for a
/// short pattern, milliseconds for a 4 KiB one), in wasm-instruction terms.
const COMPILE_FUEL_BASE: u64 = 20_000;
const COMPILE_FUEL_PER_BYTE: u64 = 2_000;

/// Largest chunk handed out by one call (mirrors the contract's documented 64 KiB).
const CHUNK_MAX: u64 = 64 * 1024;

/// The host side of the `message` resource: the message shared with the store.
#[derive(Debug)]
pub struct MessageResource(pub(crate) Arc<ParsedMessage>);

impl SandboxState {
    fn msg(&self, handle: &Resource<MessageResource>) -> wasmtime::Result<Arc<ParsedMessage>> {
        Ok(self.table.get(handle)?.0.clone())
    }

    /// A host scan's answer: a refusal for want of budget ends the call (a trap the runtime reports
    /// as `deadline` or `fuel`); other errors are the plugin's to handle.
    fn scanned<T>(&self, result: Result<T, MatchError>) -> wasmtime::Result<Result<T, String>> {
        match result {
            Ok(value) => Ok(Ok(value)),
            Err(MatchError::Budget) => {
                Err(HostRefused(self.budget.exhausted.unwrap_or(HostExhausted::Fuel)).into())
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

/// The trap a host primitive ends a call with when the call's deadline or fuel cannot pay for it.
#[derive(Debug, thiserror::Error)]
#[error("host scan refused: the call's {} is exhausted", match .0 { HostExhausted::Deadline => "deadline", HostExhausted::Fuel => "fuel" })]
pub(crate) struct HostRefused(pub HostExhausted);

fn addresses(list: Vec<Address>) -> Vec<WitAddress> {
    list.into_iter()
        .map(|a| WitAddress {
            name: a.name,
            address: a.address,
        })
        .collect()
}

fn field(field: WitField) -> Field {
    match field {
        WitField::Header(name) => Field::Header(name),
        WitField::Subject => Field::Subject,
        WitField::From => Field::From,
        WitField::To => Field::To,
        WitField::Cc => Field::Cc,
        WitField::ReplyTo => Field::ReplyTo,
        WitField::TextBody => Field::TextBody,
        WitField::HtmlBody => Field::HtmlBody,
        WitField::Body => Field::Body,
        WitField::AttachmentNames => Field::AttachmentNames,
    }
}

/// Up to `max_len` (clamped to [`CHUNK_MAX`]) bytes of `text` from `offset`, cut at char boundaries.
fn text_chunk(text: &str, offset: u64, max_len: u32) -> String {
    let len = text.len();
    let mut start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let mut end = start
        .saturating_add(u64::from(max_len).min(CHUNK_MAX) as usize)
        .min(len);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[start..end].to_string()
}

fn byte_chunk(bytes: &[u8], offset: u64, max_len: u32) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start
        .saturating_add(u64::from(max_len).min(CHUNK_MAX) as usize)
        .min(bytes.len());
    bytes[start..end].to_vec()
}

impl HostMessage for SandboxState {
    fn header(
        &mut self,
        m: Resource<MessageResource>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.msg(&m)?.header(&name))
    }

    fn header_all(
        &mut self,
        m: Resource<MessageResource>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(self.msg(&m)?.header_all(&name))
    }

    fn header_names(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<String>> {
        Ok(self.msg(&m)?.header_names())
    }

    fn from(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<WitAddress>> {
        Ok(addresses(self.msg(&m)?.from()))
    }

    fn to(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<WitAddress>> {
        Ok(addresses(self.msg(&m)?.to()))
    }

    fn cc(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<WitAddress>> {
        Ok(addresses(self.msg(&m)?.cc()))
    }

    fn reply_to(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<WitAddress>> {
        Ok(addresses(self.msg(&m)?.reply_to()))
    }

    fn subject(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Option<String>> {
        Ok(self.msg(&m)?.subject().map(str::to_string))
    }

    fn date(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Option<i64>> {
        Ok(self.msg(&m)?.date())
    }

    fn message_id(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Option<String>> {
        Ok(self.msg(&m)?.message_id().map(str::to_string))
    }

    fn size(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<u64> {
        Ok(self.msg(&m)?.size())
    }

    fn text_body_len(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<u64> {
        Ok(self.msg(&m)?.text_body().len() as u64)
    }

    fn text_body(
        &mut self,
        m: Resource<MessageResource>,
        offset: u64,
        max_len: u32,
    ) -> wasmtime::Result<String> {
        Ok(text_chunk(self.msg(&m)?.text_body(), offset, max_len))
    }

    fn html_body_len(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<u64> {
        Ok(self.msg(&m)?.html_body().len() as u64)
    }

    fn html_body(
        &mut self,
        m: Resource<MessageResource>,
        offset: u64,
        max_len: u32,
    ) -> wasmtime::Result<String> {
        Ok(text_chunk(self.msg(&m)?.html_body(), offset, max_len))
    }

    fn attachments(
        &mut self,
        m: Resource<MessageResource>,
    ) -> wasmtime::Result<Vec<WitAttachment>> {
        Ok(self
            .msg(&m)?
            .attachments()
            .into_iter()
            .map(|a| WitAttachment {
                index: a.index,
                filename: a.filename,
                content_type: a.content_type,
                size: a.size,
            })
            .collect())
    }

    fn attachment_bytes(
        &mut self,
        m: Resource<MessageResource>,
        index: u32,
        offset: u64,
        max_len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        let msg = self.msg(&m)?;
        Ok(msg
            .attachment_content(index)
            .map(|bytes| byte_chunk(bytes, offset, max_len))
            .unwrap_or_default())
    }

    fn raw(
        &mut self,
        m: Resource<MessageResource>,
        offset: u64,
        max_len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        Ok(byte_chunk(self.msg(&m)?.raw(), offset, max_len))
    }

    fn folder(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<String> {
        Ok(self.msg(&m)?.envelope().folder.clone())
    }

    fn flags(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<String>> {
        Ok(self.msg(&m)?.envelope().flags.clone())
    }

    fn tags(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<Vec<String>> {
        Ok(self.msg(&m)?.envelope().tags.clone())
    }

    fn contains(
        &mut self,
        m: Resource<MessageResource>,
        f: WitField,
        needle: String,
    ) -> wasmtime::Result<bool> {
        let msg = self.msg(&m)?;
        let result =
            msg.field_contains_metered(&field(f), &needle, &mut |fuel| self.budget.charge(fuel));
        Ok(self.scanned(result)?.unwrap_or(false))
    }

    fn equals(
        &mut self,
        m: Resource<MessageResource>,
        f: WitField,
        value: String,
    ) -> wasmtime::Result<bool> {
        let msg = self.msg(&m)?;
        let result =
            msg.field_equals_metered(&field(f), &value, &mut |fuel| self.budget.charge(fuel));
        Ok(self.scanned(result)?.unwrap_or(false))
    }

    fn matches(
        &mut self,
        m: Resource<MessageResource>,
        f: WitField,
        pattern: String,
    ) -> wasmtime::Result<Result<bool, String>> {
        let msg = self.msg(&m)?;
        // Compiling is host work too, paid on every call whether the tenant's cache has the pattern or
        // not: a cache makes calls faster, not cheaper, so a call's fuel does not depend on what
        // other calls did. An invalid pattern is not cached, so a guest retrying it pays every time.
        let compile_fuel = COMPILE_FUEL_BASE + COMPILE_FUEL_PER_BYTE * pattern.len() as u64;
        if !self.budget.charge(compile_fuel) {
            return self.scanned(Err(MatchError::Budget));
        }
        let compiled = match self.patterns.get(&self.tenant, &pattern) {
            Ok(Lookup::Hit(p) | Lookup::Compiled(p)) => p,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let result =
            msg.field_matches_pattern(&field(f), &compiled, &mut |fuel| self.budget.charge(fuel));
        self.scanned(result)
    }

    fn drop(&mut self, m: Resource<MessageResource>) -> wasmtime::Result<()> {
        self.table.delete(m)?;
        Ok(())
    }
}

impl Host for SandboxState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_utf8_and_the_cap() {
        let text = "aé".repeat(50_000); // 150 000 bytes
        let first = text_chunk(&text, 0, u32::MAX);
        assert!(first.len() <= CHUNK_MAX as usize && first.len() > CHUNK_MAX as usize - 4);
        let second = text_chunk(&text, first.len() as u64, 10);
        assert_eq!(second.len(), 9 + usize::from(!second.ends_with('a')));
        assert_eq!(text_chunk(&text, 1, 2), "é");
        assert_eq!(text_chunk(&text, 1, 1), ""); // one byte holds no part of a 2-byte char
        assert_eq!(text_chunk(&text, 2, 1), "a"); // an offset inside 'é' moves forward to the next char
        assert_eq!(text_chunk(&text, u64::MAX, 10), "");
        assert_eq!(byte_chunk(b"abcdef", 4, 10), b"ef");
        assert_eq!(byte_chunk(b"abcdef", 9, 10), b"");
    }
}
