import { render } from 'preact';
import { reportColorScheme } from '../../lib/color-scheme';
import { Downloads } from './Downloads';
import '../../components/style.css';
import './downloads.css';

// The toolbar icon is drawn for the theme this page sees (lib/color-scheme.ts).
reportColorScheme();
const root = document.getElementById('app');
if (root) render(<Downloads />, root);
