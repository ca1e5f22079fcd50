"""Forms of the Art. 86 channel: the affected person's reference, their contest, the officer's actions."""

from __future__ import annotations

from django import forms

from compliance.services.explanations import NOTE_MAX


class ReferenceForm(forms.Form):
    """The reference the deployer gave the person: system, case reference, verification code."""

    system = forms.CharField(max_length=100, label="System",
                             help_text="As written in the letter or message you received (e.g. credit-scoring).")
    external_id = forms.CharField(max_length=255, label="Case reference")
    code = forms.CharField(max_length=40, label="Verification code",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))


class ExplanationRequestForm(ReferenceForm):
    message = forms.CharField(required=False, max_length=NOTE_MAX, label="What would you like to know? (optional)",
                              widget=forms.Textarea(attrs={"rows": 4}))
    contact = forms.EmailField(required=False, label="E-mail for the answer (optional)",
                               help_text="We send the explanation letter here. Without it, the organisation "
                                         "answers by the contact details it already has.")


class ContestForm(ReferenceForm):
    reason = forms.CharField(max_length=NOTE_MAX, label="Why do you contest the decision?",
                             widget=forms.Textarea(attrs={"rows": 5}))


class AnswerForm(forms.Form):
    note = forms.CharField(required=False, max_length=NOTE_MAX, label="Personal note in the letter (optional)",
                           widget=forms.Textarea(attrs={"rows": 4}))


class OfficerContestForm(forms.Form):
    reason = forms.CharField(max_length=NOTE_MAX, label="The person's grounds (as received)",
                             widget=forms.Textarea(attrs={"rows": 3}))
