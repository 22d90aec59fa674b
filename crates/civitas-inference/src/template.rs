//! Rendering a conversation into the model's own prompt format.
//!
//! The template is the Jinja text stored in the GGUF file
//! (`tokenizer.chat_template`), rendered with minijinja. `tojson` follows
//! Python's `json.dumps` spacing, as the templates were written for it.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value as JinjaValue};
use serde::Serialize;
use serde_json::Value;

/// A message in the shape chat templates expect.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TemplateMessage {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<TemplateToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A tool call inside an assistant message, arguments as a JSON value.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TemplateToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub call_type: String,
    pub function: TemplateFunction,
}

/// Name and arguments of a templated tool call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TemplateFunction {
    pub name: String,
    pub arguments: Value,
}

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    environment: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the model's chat template cannot be used: {0}")]
    Invalid(String),
    #[error("the conversation cannot be rendered with the model's template: {0}")]
    Render(String),
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `json.dumps`-style JSON: `", "` and `": "` separators, non-ASCII kept.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(value, &mut out);
    out
}

fn tojson(value: JinjaValue) -> Result<JinjaValue, JinjaError> {
    let json: Value = serde_json::to_value(&value)
        .map_err(|error| JinjaError::new(ErrorKind::InvalidOperation, error.to_string()))?;
    Ok(JinjaValue::from_safe_string(python_json(&json)))
}

fn raise_exception(message: String) -> Result<JinjaValue, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, TemplateError> {
        let mut environment = Environment::new();
        environment.set_trim_blocks(true);
        environment.set_lstrip_blocks(true);
        environment.add_filter("tojson", tojson);
        environment.add_function("raise_exception", raise_exception);
        environment
            .add_template_owned("chat".to_owned(), source.to_owned())
            .map_err(|error| TemplateError::Invalid(error.to_string()))?;
        Ok(ChatTemplate {
            environment,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// Renders the conversation, ending with the assistant's turn opener.
    pub fn render(
        &self,
        messages: &[TemplateMessage],
        tools: Option<&Value>,
    ) -> Result<String, TemplateError> {
        let template = self
            .environment
            .get_template("chat")
            .map_err(|error| TemplateError::Invalid(error.to_string()))?;
        template
            .render(minijinja::context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|error| TemplateError::Render(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn message(role: &str, content: &str) -> TemplateMessage {
        TemplateMessage {
            role: role.to_owned(),
            content: content.to_owned(),
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }

    #[test]
    fn renders_chatml() {
        let template = ChatTemplate::new(CHATML, "", "").unwrap();
        let prompt = template
            .render(
                &[message("system", "Be brief."), message("user", "Bonjour")],
                None,
            )
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nBonjour<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn tojson_uses_python_spacing_and_keeps_unicode() {
        let value = serde_json::json!({"name": "météo", "args": [1, {"a": null}]});
        assert_eq!(
            python_json(&value),
            r#"{"name": "météo", "args": [1, {"a": null}]}"#
        );
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let template = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let error = template.render(&[], None).unwrap_err().to_string();
        assert!(error.contains("roles must alternate"), "{error}");
    }
}
