//! Energy and emissions estimates of model use.
//!
//! Method (documented for readers of usage reports): a generated token
//! costs `factor` watt-hours per thousand tokens per billion parameters of
//! the model, a prompt token a third of that (prompt tokens are processed
//! in parallel); emissions are the energy times the grid's carbon
//! intensity. Sizes come from the model catalogue, or from
//! `energy.model_parameters` for other models; a model of unknown size
//! counts as zero (and is named so in reports).

use std::collections::HashMap;

use civitas_config::Config;

/// An estimate for some use of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    pub watt_hours: f64,
    pub grams_co2e: f64,
}

#[derive(Debug, Clone, Default)]
pub struct EnergyModel {
    factor: f64,
    grid: f64,
    sizes: HashMap<String, f64>,
}

impl EnergyModel {
    pub fn new(config: &Config) -> EnergyModel {
        let mut sizes: HashMap<String, f64> = civitas_inference::catalogue::entries()
            .into_iter()
            .filter(|entry| entry.parameters_billions > 0.0)
            .map(|entry| (entry.name, entry.parameters_billions))
            .collect();
        for (model, size) in &config.energy.model_parameters {
            sizes.insert(model.clone(), *size);
        }
        EnergyModel {
            factor: config.energy.wh_per_thousand_tokens_per_billion_parameters,
            grid: config.energy.grid_gco2e_per_kwh,
            sizes,
        }
    }

    /// Whether the size of `model` is known.
    pub fn knows(&self, model: &str) -> bool {
        self.sizes.contains_key(model)
    }

    pub fn estimate(&self, model: &str, prompt_tokens: i64, completion_tokens: i64) -> Estimate {
        let size = self.sizes.get(model).copied().unwrap_or(0.0);
        let tokens = prompt_tokens.max(0) as f64 / 3.0 + completion_tokens.max(0) as f64;
        let watt_hours = tokens / 1000.0 * size * self.factor;
        Estimate {
            watt_hours,
            grams_co2e: watt_hours / 1000.0 * self.grid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_the_documented_method() {
        let mut config = Config::default();
        config.energy.wh_per_thousand_tokens_per_billion_parameters = 2.0;
        config.energy.grid_gco2e_per_kwh = 400.0;
        config
            .energy
            .model_parameters
            .insert("remote-70b".to_owned(), 70.0);
        let model = EnergyModel::new(&config);
        // 3,000 prompt tokens count as 1,000 generated ones.
        let estimate = model.estimate("remote-70b", 3000, 1000);
        assert!((estimate.watt_hours - 2.0 * 70.0 * 2.0).abs() < 1e-9);
        assert!((estimate.grams_co2e - 280.0 / 1000.0 * 400.0).abs() < 1e-9);
        assert!(model.knows("qwen2.5-1.5b-instruct"));
        let catalogue = model.estimate("qwen2.5-1.5b-instruct", 0, 1000);
        assert!((catalogue.watt_hours - 1.54 * 2.0).abs() < 1e-9);
        assert_eq!(model.estimate("unknown", 100, 100), Estimate::default());
        assert_eq!(model.estimate("remote-70b", -5, 0), Estimate::default());
    }
}
